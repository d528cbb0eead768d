//! Hardware receive timestamps: what the NIC can do (`ETHTOOL_GET_TS_INFO`), turning them on
//! (`SIOCSHWTSTAMP`), and the socket options that ask for them (`SO_TIMESTAMPING`,
//! `PACKET_TIMESTAMP`). UAPI names from `<linux/net_tstamp.h>` and `<linux/ethtool.h>`.
#![allow(non_camel_case_types)]

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use super::{ifreq_for, setsockopt};
use crate::{Error, Result};

// `<linux/net_tstamp.h>` (ABI; defined here because libc lacks some on some targets).
pub(crate) const SOF_TIMESTAMPING_RX_HARDWARE: u32 = 1 << 2;
pub(crate) const SOF_TIMESTAMPING_RAW_HARDWARE: u32 = 1 << 6;
const HWTSTAMP_TX_OFF: i32 = 0;
const HWTSTAMP_FILTER_NONE: i32 = 0;
const HWTSTAMP_FILTER_ALL: i32 = 1;
/// `SO_TIMESTAMPING` (`<asm-generic/socket.h>`, the `_OLD` value, 32-bit `timespec`s on
/// 32-bit targets too); its control message is `SCM_TIMESTAMPING`, the same number.
pub(crate) const SO_TIMESTAMPING: libc::c_int = 37;
/// `PACKET_TIMESTAMP` (`<linux/if_packet.h>`): which stamp a PACKET_MMAP ring reports.
pub(crate) const PACKET_TIMESTAMP: libc::c_int = 17;
/// `tp_status` bit of a ring packet: `tp_sec`/`tp_nsec` hold the NIC's raw stamp
/// (`TP_STATUS_TS_SOFTWARE`, 1 << 29, marks the kernel's).
pub(crate) const TP_STATUS_TS_RAW_HARDWARE: u32 = 1 << 31;
/// `ETHTOOL_GET_TS_INFO` (`<linux/ethtool.h>`).
const ETHTOOL_GET_TS_INFO: u32 = 0x41;
const SIOCETHTOOL: libc::c_ulong = 0x8946;
const SIOCGHWTSTAMP: libc::c_ulong = 0x89b1;
const SIOCSHWTSTAMP: libc::c_ulong = 0x89b0;

/// `struct ethtool_ts_info`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ethtool_ts_info {
    pub(crate) cmd: u32,
    pub(crate) so_timestamping: u32,
    pub(crate) phc_index: i32,
    pub(crate) tx_types: u32,
    pub(crate) tx_reserved: [u32; 3],
    pub(crate) rx_filters: u32,
    pub(crate) rx_reserved: [u32; 3],
}

/// `struct hwtstamp_config`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct hwtstamp_config {
    flags: i32,
    tx_type: i32,
    rx_filter: i32,
}

/// `ioctl(fd, req, &ifreq { name, ifr_data = data })`.
fn ioctl_data<T>(fd: &OwnedFd, name: &str, req: libc::c_ulong, data: &mut T) -> io::Result<()> {
    let mut ifr = ifreq_for(name).map_err(|_| io::Error::from_raw_os_error(libc::ENODEV))?;
    ifr.ifr_ifru.ifru_data = (data as *mut T).cast();
    // SAFETY: `ifr` names the interface (NUL-terminated) and points `ifr_data` at `*data`, a
    // live, writable UAPI struct of the type `req` expects; the kernel reads and writes only it.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), req as _, &mut ifr) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `ioctl(SIOCETHTOOL, ETHTOOL_GET_TS_INFO)`—what timestamping the interface offers
/// (`ethtool -T`).
///
/// # References
/// - <https://docs.kernel.org/networking/timestamping.html>
pub(crate) fn ts_info(fd: &OwnedFd, name: &str) -> Result<ethtool_ts_info> {
    let mut info = ethtool_ts_info {
        cmd: ETHTOOL_GET_TS_INFO,
        ..Default::default()
    };
    ioctl_data(fd, name, SIOCETHTOOL, &mut info).map_err(|source| Error::Syscall {
        call: "ioctl(SIOCETHTOOL, ETHTOOL_GET_TS_INFO)",
        source,
    })?;
    Ok(info)
}

/// Whether `info` says the NIC stamps received packets in hardware.
pub(crate) fn has_hw_rx(info: &ethtool_ts_info) -> bool {
    let want = SOF_TIMESTAMPING_RX_HARDWARE | SOF_TIMESTAMPING_RAW_HARDWARE;
    info.so_timestamping & want == want && info.rx_filters & (1 << HWTSTAMP_FILTER_ALL) != 0
}

/// Checks that `name` stamps received packets in hardware and turns that on for every packet
/// (`SIOCSHWTSTAMP`, `HWTSTAMP_FILTER_ALL`) unless some filter is already on, as libpcap does.
/// The setting is the device's: it stays after the capture, as with libpcap.
///
/// # Errors
/// [`Error::Unsupported`] naming the interface when it has no hardware receive timestamps;
/// [`Error::NotPermitted`] without `CAP_NET_ADMIN`.
pub(crate) fn enable_hw_rx(fd: &OwnedFd, name: &str, backend: &'static str) -> Result<()> {
    let info = ts_info(fd, name)?;
    if !has_hw_rx(&info) {
        return Err(Error::Unsupported {
            backend,
            why: format!(
                "interface `{name}` has no hardware receive timestamps (`ethtool -T {name}` \
                 lists no hardware-receive / HWTSTAMP_FILTER_ALL)"
            ),
            fix: "capture with -j host (the kernel's software timestamps), or on a NIC with hardware timestamping",
        });
    }
    let mut cfg = hwtstamp_config::default();
    let on = ioctl_data(fd, name, SIOCGHWTSTAMP, &mut cfg).is_ok()
        && cfg.rx_filter != HWTSTAMP_FILTER_NONE;
    if on {
        return Ok(());
    }
    let mut cfg = hwtstamp_config {
        flags: 0,
        tx_type: HWTSTAMP_TX_OFF,
        rx_filter: HWTSTAMP_FILTER_ALL,
    };
    ioctl_data(fd, name, SIOCSHWTSTAMP, &mut cfg).map_err(|source| match source.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => Error::NotPermitted {
            call: "ioctl(SIOCSHWTSTAMP)",
            needs: "CAP_NET_ADMIN",
        },
        _ => Error::Syscall {
            call: "ioctl(SIOCSHWTSTAMP)",
            source,
        },
    })
}

/// `setsockopt(SO_TIMESTAMPING, flags)` on a recv socket.
pub(crate) fn set_so_timestamping(fd: &OwnedFd, flags: u32) -> Result<()> {
    setsockopt(
        fd,
        libc::SOL_SOCKET,
        SO_TIMESTAMPING,
        &flags,
        "setsockopt(SO_TIMESTAMPING)",
    )
}

/// `setsockopt(PACKET_TIMESTAMP, flags)` on a ring socket.
pub(crate) fn set_packet_timestamp(fd: &OwnedFd, flags: u32) -> Result<()> {
    setsockopt(
        fd,
        libc::SOL_PACKET,
        PACKET_TIMESTAMP,
        &flags,
        "setsockopt(PACKET_TIMESTAMP)",
    )
}

#[cfg(test)]
mod test {
    use super::*;
    use std::mem::size_of;

    #[test]
    fn uapi_sizes_match_the_kernel() {
        assert_eq!(size_of::<ethtool_ts_info>(), 44);
        assert_eq!(size_of::<hwtstamp_config>(), 12);
        assert_eq!(SIOCSHWTSTAMP, libc::SIOCSHWTSTAMP as libc::c_ulong);
        assert_eq!(
            SOF_TIMESTAMPING_RAW_HARDWARE,
            libc::SOF_TIMESTAMPING_RAW_HARDWARE
        );
    }
}
