//! AF_XDP: UAPI mirrors of `include/uapi/linux/if_xdp.h` and the system calls the `xdp` backend
//! makes (socket, UMEM allocation, ring setup, bind, statistics, wake-ups).
//!
//! Guarantees: every struct is `#[repr(C)]` with the kernel's field names and has a size test;
//! every wrapper passes the exact size of the object it points to; nothing here allocates except
//! at setup. Wrappers that the backend probes with (bind) return the raw [`io::Error`] so the
//! caller can match named errnos.
//!
//! # References
//! - <https://docs.kernel.org/networking/af_xdp.html>
//! - <https://github.com/torvalds/linux/blob/master/include/uapi/linux/if_xdp.h>

#![allow(non_camel_case_types)]

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::{errno_error, Mmap};
use crate::{Error, Result};

/// `SOL_XDP` from `<linux/socket.h>`; libc lacks it on some targets (as xdpilone notes).
pub(crate) const SOL_XDP: libc::c_int = 283;

// Socket options at level SOL_XDP (`if_xdp.h`).
pub(crate) const XDP_MMAP_OFFSETS: libc::c_int = 1;
pub(crate) const XDP_RX_RING: libc::c_int = 2;
pub(crate) const XDP_TX_RING: libc::c_int = 3;
pub(crate) const XDP_UMEM_REG: libc::c_int = 4;
pub(crate) const XDP_UMEM_FILL_RING: libc::c_int = 5;
pub(crate) const XDP_UMEM_COMPLETION_RING: libc::c_int = 6;
pub(crate) const XDP_STATISTICS: libc::c_int = 7;
pub(crate) const XDP_OPTIONS: libc::c_int = 8;

/// `xdp_options.flags`: the socket is bound in zero-copy mode.
pub(crate) const XDP_OPTIONS_ZEROCOPY: u32 = 1 << 0;

// `sockaddr_xdp.sxdp_flags`.
pub(crate) const XDP_SHARED_UMEM: u16 = 1 << 0;
pub(crate) const XDP_COPY: u16 = 1 << 1;
pub(crate) const XDP_ZEROCOPY: u16 = 1 << 2;
pub(crate) const XDP_USE_NEED_WAKEUP: u16 = 1 << 3;

/// Ring `flags` word: the kernel asks for a syscall to make progress on this ring.
pub(crate) const XDP_RING_NEED_WAKEUP: u32 = 1 << 0;

// Page offsets passed to mmap(2) to select a ring.
pub(crate) const XDP_PGOFF_RX_RING: i64 = 0;
pub(crate) const XDP_PGOFF_TX_RING: i64 = 0x8000_0000;
pub(crate) const XDP_UMEM_PGOFF_FILL_RING: i64 = 0x1_0000_0000;
pub(crate) const XDP_UMEM_PGOFF_COMPLETION_RING: i64 = 0x1_8000_0000;

/// `SO_PREFER_BUSY_POLL` from `<asm-generic/socket.h>` (libc has it only on recent versions).
pub(crate) const SO_PREFER_BUSY_POLL: libc::c_int = 69;
/// `SO_BUSY_POLL_BUDGET` from `<asm-generic/socket.h>`.
pub(crate) const SO_BUSY_POLL_BUDGET: libc::c_int = 70;

/// `struct sockaddr_xdp`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct sockaddr_xdp {
    pub(crate) sxdp_family: u16,
    pub(crate) sxdp_flags: u16,
    pub(crate) sxdp_ifindex: u32,
    pub(crate) sxdp_queue_id: u32,
    pub(crate) sxdp_shared_umem_fd: u32,
}

/// `struct xdp_ring_offset`: byte offsets of one ring's fields inside its mapping.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct xdp_ring_offset {
    pub(crate) producer: u64,
    pub(crate) consumer: u64,
    pub(crate) desc: u64,
    pub(crate) flags: u64,
}

/// `struct xdp_mmap_offsets`: the four rings' layouts (`XDP_MMAP_OFFSETS`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct xdp_mmap_offsets {
    pub(crate) rx: xdp_ring_offset,
    pub(crate) tx: xdp_ring_offset,
    /// Fill ring.
    pub(crate) fr: xdp_ring_offset,
    /// Completion ring.
    pub(crate) cr: xdp_ring_offset,
}

/// `struct xdp_umem_reg` (current layout; `tx_metadata_len = 0` makes it equivalent to v2).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct xdp_umem_reg {
    pub(crate) addr: u64,
    pub(crate) len: u64,
    pub(crate) chunk_size: u32,
    pub(crate) headroom: u32,
    pub(crate) flags: u32,
    pub(crate) tx_metadata_len: u32,
}

/// `struct xdp_statistics` (`XDP_STATISTICS`): cumulative since the socket was created.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct xdp_statistics {
    /// Dropped for reasons other than invalid descriptors.
    pub(crate) rx_dropped: u64,
    pub(crate) rx_invalid_descs: u64,
    pub(crate) tx_invalid_descs: u64,
    pub(crate) rx_ring_full: u64,
    pub(crate) rx_fill_ring_empty_descs: u64,
    pub(crate) tx_ring_empty_descs: u64,
}

/// `struct xdp_options` (`XDP_OPTIONS`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct xdp_options {
    pub(crate) flags: u32,
}

/// `struct xdp_desc`: one RX or TX ring entry. `addr` is a byte offset into the UMEM.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct xdp_desc {
    pub(crate) addr: u64,
    pub(crate) len: u32,
    pub(crate) options: u32,
}

/// `socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0)`—an XSK socket, bound to nothing yet.
///
/// # Errors
/// [`Error::Unsupported`] when the kernel has no AF_XDP (`EAFNOSUPPORT`), [`Error::NotPermitted`]
/// without `CAP_NET_RAW`.
///
/// # References
/// - <https://docs.kernel.org/networking/af_xdp.html>
pub(crate) fn xsk_socket() -> Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments; no memory is passed.
    let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EAFNOSUPPORT) {
            return Err(Error::Unsupported {
                backend: "xdp",
                why: "this kernel has no AF_XDP sockets (socket(AF_XDP): EAFNOSUPPORT)".into(),
                fix: "use a kernel built with CONFIG_XDP_SOCKETS=y, or -b mmap",
            });
        }
        return Err(errno_error("socket(AF_XDP)"));
    }
    // SAFETY: `fd` was just returned by socket(2), is open and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `bind(fd, sockaddr_xdp { ifindex, queue, flags, shared_umem_fd })`—attaches the socket to
/// one queue of one interface. Returns the raw error so the caller can fall back on
/// `EOPNOTSUPP` (no zero-copy) and name other errnos.
///
/// # References
/// - <https://docs.kernel.org/networking/af_xdp.html#bind>
pub(crate) fn xsk_bind(
    fd: &OwnedFd,
    ifindex: u32,
    queue: u32,
    flags: u16,
    shared_umem_fd: Option<RawFd>,
) -> io::Result<()> {
    let sa = sockaddr_xdp {
        sxdp_family: libc::AF_XDP as u16,
        sxdp_flags: flags,
        sxdp_ifindex: ifindex,
        sxdp_queue_id: queue,
        sxdp_shared_umem_fd: shared_umem_fd.map_or(0, |f| f as u32),
    };
    // SAFETY: `sa` is a valid sockaddr_xdp and we pass its exact size; `fd` is open.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const sockaddr_xdp).cast(),
            size_of::<sockaddr_xdp>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `recvfrom(fd, NULL, 0, MSG_DONTWAIT, NULL, NULL)`—wakes the kernel to refill from the fill
/// ring (and, with busy polling, runs the device's NAPI). Errors that only mean "try later" are
/// ignored, as libxdp does.
pub(crate) fn kick_rx(fd: &OwnedFd) -> Result<()> {
    // SAFETY: a zero-length receive into a null buffer with null address arguments: the kernel
    // writes no memory.
    let rc = unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            std::ptr::null_mut(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    if rc < 0 {
        return kick_result("recvfrom(AF_XDP, MSG_DONTWAIT)");
    }
    Ok(())
}

/// `sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0)`—asks the kernel to transmit what the TX ring
/// holds. In copy mode one call sends at most 32 frames and answers `EAGAIN` when more remain;
/// that and the other "try later" errnos (`EBUSY`, `ENOBUFS`, `ENETDOWN`) are not errors here.
pub(crate) fn kick_tx(fd: &OwnedFd) -> Result<()> {
    // SAFETY: a zero-length send from a null buffer with no address: the kernel reads no memory.
    let rc = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            std::ptr::null(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null(),
            0,
        )
    };
    if rc < 0 {
        return kick_result("sendto(AF_XDP, MSG_DONTWAIT)");
    }
    Ok(())
}

fn kick_result(call: &'static str) -> Result<()> {
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN | libc::EBUSY | libc::ENOBUFS | libc::ENETDOWN | libc::EINTR) => Ok(()),
        Some(libc::ENXIO | libc::ENODEV) => Err(Error::InterfaceGone {
            name: String::from("the AF_XDP interface"),
        }),
        _ => Err(Error::Syscall { call, source: err }),
    }
}

/// `getrlimit(RLIMIT_MEMLOCK)`—the soft limit in bytes (`u64::MAX` for unlimited).
pub(crate) fn memlock_limit() -> u64 {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rl` is a writable rlimit; getrlimit writes exactly one.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut rl) };
    if rc < 0 || rl.rlim_cur == libc::RLIM_INFINITY {
        return u64::MAX;
    }
    rl.rlim_cur
}

/// `ioctl(SIOCETHTOOL, ETHTOOL_GCHANNELS)`: the receive queues in use (`rx_count +
/// combined_count`), or `None` if the driver does not report channels.
///
/// Unlike `/sys/class/net/IF/queues`, which shows the network namespace `/sys` was mounted in,
/// this asks the namespace of the calling thread.
pub(crate) fn rx_queue_count_ethtool(ifname: &str) -> Option<u32> {
    /// `struct ethtool_channels` from `<linux/ethtool.h>`.
    #[repr(C)]
    #[derive(Default)]
    struct ethtool_channels {
        cmd: u32,
        max_rx: u32,
        max_tx: u32,
        max_other: u32,
        max_combined: u32,
        rx_count: u32,
        tx_count: u32,
        other_count: u32,
        combined_count: u32,
    }
    const ETHTOOL_GCHANNELS: u32 = 0x3c;
    let mut ifr = super::ifreq_for(ifname).ok()?;
    // SAFETY: plain syscall with integer arguments.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return None;
    }
    // SAFETY: `raw` was just returned by socket(2) and is owned by nobody else.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut ch = ethtool_channels {
        cmd: ETHTOOL_GCHANNELS,
        ..Default::default()
    };
    ifr.ifr_ifru.ifru_data = (&mut ch as *mut ethtool_channels).cast();
    // SAFETY: `ifr` names a NUL-terminated interface (ifreq_for checked the length) and points
    // `ifru_data` at a live, writable ethtool_channels, which is what ETHTOOL_GCHANNELS reads
    // (cmd) and writes (the counts); both outlive the call.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL, &mut ifr) };
    if rc < 0 {
        return None;
    }
    Some(ch.rx_count + ch.combined_count).filter(|&n| n > 0)
}

/// Counts `/sys/class/net/IF/queues/rx-*` (only right when `/sys` belongs to the caller's
/// network namespace; see [`rx_queue_count_ethtool`]).
pub(crate) fn rx_queue_count_sysfs(ifname: &str) -> Option<u32> {
    let dir = std::fs::read_dir(format!("/sys/class/net/{ifname}/queues")).ok()?;
    let n = dir
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
        .count();
    u32::try_from(n).ok().filter(|&n| n > 0)
}

/// `if_indextoname(ifindex)`—the interface name, if it exists.
pub(crate) fn ifname(ifindex: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; super::IFNAMSIZ];
    // SAFETY: `buf` has IFNAMSIZ bytes, the size if_indextoname requires.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    let bytes: Vec<u8> = buf
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8(bytes).ok()
}

/// Anonymous private memory for a UMEM: `MAP_HUGETLB` first (fewer TLB misses), normal pages when
/// no huge page is available. `MAP_POPULATE` faults every page in now, not on the first packet.
///
/// Returns the mapping and whether it is backed by huge pages.
pub(crate) fn umem_alloc(len: usize) -> Result<(Mmap, bool)> {
    const HUGE: usize = 2 << 20;
    if len & (HUGE - 1) == 0 {
        if let Ok(map) = Mmap::anonymous(len, libc::MAP_POPULATE | libc::MAP_HUGETLB) {
            return Ok((map, true));
        }
    }
    match Mmap::anonymous(len, libc::MAP_POPULATE) {
        Ok(map) => Ok((map, false)),
        Err(e) => Err(Error::OutOfMemory {
            what: "AF_XDP UMEM",
            asked: len as u64,
            why: format!("mmap of anonymous memory failed ({e}); lower frame_count or frame_size"),
        }),
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::mem::{align_of, offset_of};

    #[test]
    fn uapi_sizes() {
        assert_eq!(size_of::<sockaddr_xdp>(), 16);
        assert_eq!(size_of::<xdp_ring_offset>(), 32);
        assert_eq!(size_of::<xdp_mmap_offsets>(), 128);
        assert_eq!(size_of::<xdp_umem_reg>(), 32);
        assert_eq!(size_of::<xdp_statistics>(), 48);
        assert_eq!(size_of::<xdp_options>(), 4);
        assert_eq!(size_of::<xdp_desc>(), 16);
        assert_eq!(align_of::<xdp_desc>(), 8);
    }

    #[test]
    fn uapi_offsets() {
        assert_eq!(offset_of!(sockaddr_xdp, sxdp_ifindex), 4);
        assert_eq!(offset_of!(sockaddr_xdp, sxdp_shared_umem_fd), 12);
        assert_eq!(offset_of!(xdp_mmap_offsets, fr), 64);
        assert_eq!(offset_of!(xdp_umem_reg, chunk_size), 16);
        assert_eq!(offset_of!(xdp_umem_reg, tx_metadata_len), 28);
        assert_eq!(offset_of!(xdp_statistics, rx_ring_full), 24);
        assert_eq!(offset_of!(xdp_statistics, tx_ring_empty_descs), 40);
        assert_eq!(offset_of!(xdp_desc, options), 12);
    }

    #[test]
    fn constants_match_headers() {
        assert_eq!(SOL_XDP, 283);
        assert_eq!(XDP_PGOFF_TX_RING, 0x80000000);
        assert_eq!(XDP_UMEM_PGOFF_FILL_RING, 0x100000000);
        assert_eq!(XDP_UMEM_PGOFF_COMPLETION_RING, 0x180000000);
        assert_eq!(
            (XDP_SHARED_UMEM, XDP_COPY, XDP_ZEROCOPY, XDP_USE_NEED_WAKEUP),
            (1, 2, 4, 8)
        );
        assert_eq!((SO_PREFER_BUSY_POLL, SO_BUSY_POLL_BUDGET), (69, 70));
    }
}
