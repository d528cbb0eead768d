//! One AF_XDP socket: opening it (UMEM registration, rings, frames, busy-poll, bind, with the
//! zero-copy fallback), what it reports, and its counters. Receiving is in `batch.rs`, sending in
//! `tx.rs`.

use std::cell::Cell;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use super::busy_poll::{busy_poll, check_busy_poll};
use super::coalesce::Coalesce;
use super::rings::{CompRing, FillRing, Rings, RxRing, TxRing};
use super::umem::{register_umem, Share, Umem};
use crate::config::{Config, ZeroCopy};
use crate::packet::{Capabilities, Stats};
use crate::ring::xsk::RingFault;
use crate::sys;
use crate::sys::xdp::{self as x, xdp_options, xdp_statistics};
use crate::{Error, Result};

/// Counters of one socket: the kernel's `XDP_STATISTICS` (cumulative since the socket was
/// created) plus what fastpath counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct XdpStats {
    /// Frames the kernel dropped for other reasons than the ones below (e.g. no fill entry in
    /// copy mode).
    pub(crate) rx_dropped: u64,
    /// RX descriptors the kernel found invalid.
    pub(crate) rx_invalid_descs: u64,
    /// Frames dropped because the RX ring was full: the application is too slow or the ring
    /// too small.
    pub(crate) rx_ring_full: u64,
    /// Times the kernel found the fill ring empty.
    pub(crate) rx_fill_ring_empty_descs: u64,
    /// TX descriptors the kernel rejected (bad address or length).
    pub(crate) tx_invalid_descs: u64,
    /// Times the kernel found the TX ring empty when woken.
    pub(crate) tx_ring_empty_descs: u64,
    /// Packets fastpath lent to the application.
    pub(crate) delivered: u64,
    /// RX descriptors fastpath refused because they pointed outside the socket's frames
    /// (never, with a correct kernel).
    pub(crate) rejected_descs: u64,
    /// Packets the kernel has put on the RX ring that fastpath has not lent yet.
    pub(crate) in_ring: u64,
}

impl XdpStats {
    /// Adds another socket's counters (for a multi-queue port).
    #[cfg(test)]
    pub(crate) fn merge(&mut self, o: &XdpStats) {
        self.rx_dropped += o.rx_dropped;
        self.rx_invalid_descs += o.rx_invalid_descs;
        self.rx_ring_full += o.rx_ring_full;
        self.rx_fill_ring_empty_descs += o.rx_fill_ring_empty_descs;
        self.tx_invalid_descs += o.tx_invalid_descs;
        self.tx_ring_empty_descs += o.tx_ring_empty_descs;
        self.delivered += o.delivered;
        self.rejected_descs += o.rejected_descs;
        self.in_ring += o.in_ring;
    }
}

impl From<XdpStats> for Stats {
    /// The common counters: `received` counts what the kernel dropped, and what waits on the
    /// RX ring, too.
    fn from(k: XdpStats) -> Stats {
        let dropped = k.rx_dropped + k.rx_ring_full;
        Stats {
            received: k.delivered + k.in_ring + dropped,
            dropped,
            delivered: k.delivered,
            rx_ring_full: k.rx_ring_full,
            fill_ring_empty: k.rx_fill_ring_empty_descs,
            invalid_descs: k.rx_invalid_descs + k.tx_invalid_descs,
            tx_ring_empty: k.tx_ring_empty_descs,
            ..Stats::default()
        }
    }
}

/// One AF_XDP socket bound to one queue, with its four rings and its share of the UMEM.
// Implementation: this folder (RX in `batch.rs`, TX in `tx.rs`); rings in `ring/xsk.rs`,
// syscalls in `sys/xdp.rs`.
#[derive(Debug)]
pub(crate) struct XskSocket {
    // Drop order: the ring mappings go first, then the socket, then (last reference) the UMEM.
    pub(super) fill: FillRing,
    pub(super) comp: CompRing,
    pub(super) rx: RxRing,
    /// `None`: opened without a TX ring (receive only).
    pub(super) tx: Option<TxRing>,
    pub(super) fd: OwnedFd,
    pub(super) umem: Arc<Umem>,
    /// TX frames not in the kernel's hands (capacity fixed at open: no allocation later).
    pub(super) tx_free: Vec<u64>,
    /// TX frames submitted and not yet completed.
    pub(super) tx_outstanding: u32,
    pub(super) ifindex: u32,
    pub(super) queue: u32,
    pub(super) zero_copy: bool,
    pub(super) need_wakeup: bool,
    /// The port's program puts back VLAN tags the device stripped (set by the port).
    pub(super) restores_vlan: bool,
    /// The port's program writes each frame's receive timestamp before it (set by the port).
    pub(super) rx_timestamps: bool,
    pub(super) batch_size: u32,
    pub(super) snaplen: u32,
    pub(super) delivered: u64,
    pub(super) rejected: u64,
    /// Busy polling is on: receive spins on `recvfrom(MSG_DONTWAIT)` instead of `poll`.
    pub(super) busy_poll: bool,
    /// Whether an empty RX ring under load is waited for with a nap (`XdpConfig::coalesce`).
    pub(super) coalesce: Option<Coalesce>,
    /// This socket's RX frames: byte offsets `rx_base..rx_base + rx_len` of the UMEM. An RX
    /// descriptor outside them is refused: lending it could alias a frame fastpath writes (TX)
    /// or another socket owns.
    pub(super) rx_base: u64,
    pub(super) rx_len: u64,
    /// This socket's TX frames, likewise; a completion outside them is refused.
    pub(super) tx_base: u64,
    pub(super) tx_len: u64,
    /// One bit per TX frame: set while the kernel holds it (submitted, not completed), so a
    /// completion the kernel reports twice is refused instead of freeing a frame twice.
    pub(super) tx_held: Vec<u64>,
    /// The interface's MAC address, for [`Packet::direction`](crate::Packet::direction).
    pub(super) local_mac: [u8; 6],
    /// The first impossible value a ring held; every later receive or send fails with it.
    pub(super) fault: Cell<Option<XskFault>>,
}

/// An impossible value in one of a socket's rings (see [`Error::KernelRing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct XskFault {
    pub(super) ring: &'static str,
    pub(super) fault: RingFault,
}

impl XskFault {
    pub(super) fn into_error(self) -> Error {
        Error::KernelRing {
            ring: self.ring,
            why: self.fault.why,
            value: self.fault.value,
        }
    }
}

impl XskSocket {
    /// Records `fault` in `ring` (the first one wins) and returns its error.
    #[cold]
    pub(super) fn fail(&self, ring: &'static str, fault: RingFault) -> Error {
        if self.fault.get().is_none() {
            self.fault.set(Some(XskFault { ring, fault }));
        }
        self.fault.get().expect("just set").into_error()
    }

    /// The error of a fault recorded earlier, if any.
    #[inline]
    pub(super) fn check_fault(&self) -> Result<()> {
        match self.fault.get() {
            None => Ok(()),
            Some(f) => Err(f.into_error()),
        }
    }
}

impl XskSocket {
    /// Creates, sets up and binds one socket. `shared` is the socket that registered the UMEM,
    /// `None` for that first socket itself.
    pub(super) fn open(
        ifindex: u32,
        queue: u32,
        cfg: &Config,
        umem: &Arc<Umem>,
        share: Share,
        shared: Option<&XskSocket>,
    ) -> Result<XskSocket> {
        let open = |mode| Self::open_mode(ifindex, queue, cfg, umem, share, shared, mode);
        match (shared, cfg.xdp.zero_copy) {
            (Some(_), _) => open(0),
            (None, ZeroCopy::Never) => open(x::XDP_COPY),
            (None, ZeroCopy::Require) => open(x::XDP_ZEROCOPY),
            (None, ZeroCopy::Auto) => {
                // A failed zero-copy bind leaves the socket without its fill/completion rings
                // (the kernel moved them into the pool it then destroyed), so copy mode is tried
                // on a fresh socket.
                match open(x::XDP_ZEROCOPY) {
                    Err(OpenError::Bind(BindFailed(e), _))
                        if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EINVAL)) =>
                    {
                        open(x::XDP_COPY)
                    }
                    r => r,
                }
            }
        }
        .map_err(|e| e.into_error(ifindex, queue))
    }

    /// One attempt at [`open`](Self::open) with the bind flags of `mode` (`XDP_COPY` or
    /// `XDP_ZEROCOPY`; ignored for a shared socket).
    fn open_mode(
        ifindex: u32,
        queue: u32,
        cfg: &Config,
        umem: &Arc<Umem>,
        share: Share,
        shared: Option<&XskSocket>,
        mode: u16,
    ) -> std::result::Result<XskSocket, OpenError> {
        let xc = &cfg.xdp;
        let fd = x::xsk_socket()?;
        if shared.is_none() {
            register_umem(&fd, umem)?;
        }
        let Rings {
            mut fill,
            comp,
            rx,
            tx,
        } = Rings::create(&fd, xc)?;
        let tx_free = hand_out(&mut fill, share, umem.frame_size)?;
        if let Some((usecs, budget)) = xc.busy_poll {
            busy_poll(&fd, usecs, budget)?;
        }
        let flags = bind_flags(shared.is_some(), mode, xc.need_wakeup);
        x::xsk_bind(&fd, ifindex, queue, flags, shared.map(|s| s.fd.as_raw_fd()))
            .map_err(|e| OpenError::Bind(BindFailed(e), flags))?;

        let opts: xdp_options =
            sys::getsockopt(&fd, x::SOL_XDP, x::XDP_OPTIONS, "getsockopt(XDP_OPTIONS)")?;
        if xc.busy_poll.is_some() {
            check_busy_poll(&fd)?;
        }
        let need_wakeup = match shared {
            Some(first) => first.need_wakeup,
            None => xc.need_wakeup,
        };
        Ok(XskSocket {
            fill,
            comp,
            rx,
            tx,
            fd,
            umem: Arc::clone(umem),
            tx_free,
            tx_outstanding: 0,
            ifindex,
            queue,
            zero_copy: opts.flags & x::XDP_OPTIONS_ZEROCOPY != 0,
            need_wakeup,
            restores_vlan: false,
            rx_timestamps: false,
            batch_size: cfg.batch_size as u32,
            snaplen: cfg.snaplen,
            delivered: 0,
            rejected: 0,
            busy_poll: xc.busy_poll.is_some(),
            coalesce: xc.coalesce.then(Coalesce::default),
            rx_base: u64::from(share.first) * u64::from(umem.frame_size),
            rx_len: u64::from(share.rx) * u64::from(umem.frame_size),
            tx_base: u64::from(share.first + share.rx) * u64::from(umem.frame_size),
            tx_len: u64::from(share.tx) * u64::from(umem.frame_size),
            // No TX ring (tx_size 0): `split` gave no TX frames, so no bitmap either.
            tx_held: vec![0; (share.tx as usize).div_ceil(64)],
            local_mac: [0; 6],
            fault: Cell::new(None),
        })
    }

    /// The descriptor to wait on (`POLLIN`: RX ring not empty; `POLLOUT`: TX ring has room).
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The queue this socket is bound to.
    pub(crate) fn queue(&self) -> u32 {
        self.queue
    }

    /// Whether the kernel bound the socket in zero-copy mode (read back with `XDP_OPTIONS`).
    #[cfg(test)]
    pub(super) fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// Whether the `need_wakeup` protocol is on.
    #[cfg(test)]
    pub(super) fn need_wakeup(&self) -> bool {
        self.need_wakeup
    }

    /// `"af_xdp zero-copy"` or `"af_xdp copy"`.
    #[cfg(test)]
    pub(super) fn mode_name(&self) -> &'static str {
        self.capabilities().mode
    }

    /// Whether the UMEM is backed by huge pages (`MAP_HUGETLB` succeeded).
    #[cfg(test)]
    pub(super) fn umem_hugetlb(&self) -> bool {
        self.umem.huge
    }

    /// What this socket can do. `zero_copy` is true in both modes in the sense of
    /// [`Capabilities::zero_copy`] (packets are lent in place from the UMEM, never copied to a
    /// user buffer); `mode` says whether the *driver* copies.
    pub(crate) fn capabilities(&self) -> Capabilities {
        let mut caps = Self::caps(self.need_wakeup, self.zero_copy, self.restores_vlan);
        caps.hardware_timestamps = self.rx_timestamps;
        caps.tx = self.can_send();
        caps
    }

    /// What a socket with these properties reports (also what `probe` predicts).
    pub(crate) fn caps(need_wakeup: bool, zero_copy: bool, restores_vlan: bool) -> Capabilities {
        Capabilities {
            zero_copy: true,
            fanout: true,
            // Receive-only unless XdpConfig::tx_size asks for a TX ring.
            tx: false,
            timestamps_ns: false,
            hardware_timestamps: false,
            need_wakeup,
            kernel_filter: true,
            driver_zero_copy: zero_copy,
            restores_vlan,
            mode: if zero_copy {
                "af_xdp zero-copy"
            } else {
                "af_xdp copy"
            },
        }
    }

    /// `XDP_STATISTICS` plus fastpath's own counters.
    ///
    /// # Errors
    /// [`Error::Syscall`] if the kernel refuses `XDP_STATISTICS` (it does not in practice).
    pub(crate) fn stats(&self) -> Result<XdpStats> {
        let k: xdp_statistics = sys::getsockopt(
            &self.fd,
            x::SOL_XDP,
            x::XDP_STATISTICS,
            "getsockopt(XDP_STATISTICS)",
        )?;
        Ok(XdpStats {
            rx_dropped: k.rx_dropped,
            rx_invalid_descs: k.rx_invalid_descs,
            rx_ring_full: k.rx_ring_full,
            rx_fill_ring_empty_descs: k.rx_fill_ring_empty_descs,
            tx_invalid_descs: k.tx_invalid_descs,
            tx_ring_empty_descs: k.tx_ring_empty_descs,
            delivered: self.delivered,
            rejected_descs: self.rejected,
            in_ring: u64::from(
                self.rx
                    .pending()
                    .map_err(|f| self.fail("AF_XDP rx ring", f))?,
            ),
        })
    }
}

/// Gives a socket its share of the UMEM: its RX frames go on the fill ring (before bind, so the
/// first packet finds one); its TX frames are returned as the free pool.
fn hand_out(fill: &mut FillRing, share: Share, frame_size: u32) -> Result<Vec<u64>> {
    let fs = u64::from(frame_size);
    let s = fill.reserve(share.rx).map_err(|f| Error::KernelRing {
        ring: "AF_XDP fill ring",
        why: f.why,
        value: f.value,
    })?;
    debug_assert_eq!(
        s.len, share.rx,
        "split() caps rx frames at the fill ring size"
    );
    for (i, idx) in s.iter().enumerate() {
        fill.write(idx, u64::from(share.first + i as u32) * fs);
    }
    fill.submit(s.len);
    let mut tx_free = Vec::with_capacity(share.tx as usize);
    tx_free.extend(
        (0..share.tx)
            .rev()
            .map(|i| u64::from(share.first + share.rx + i) * fs),
    );
    Ok(tx_free)
}

/// The `bind` flags: `mode` plus `XDP_USE_NEED_WAKEUP` if asked for; only `XDP_SHARED_UMEM` for
/// a socket sharing another's UMEM.
fn bind_flags(shared: bool, mode: u16, need_wakeup: bool) -> u16 {
    if shared {
        // Shared sockets inherit copy/zero-copy and need_wakeup from the UMEM's owner; the
        // kernel refuses those flags here (EINVAL).
        x::XDP_SHARED_UMEM
    } else {
        mode | if need_wakeup {
            x::XDP_USE_NEED_WAKEUP
        } else {
            0
        }
    }
}

/// Why `bind` failed, in words.
fn bind_error(e: std::io::Error, ifindex: u32, queue: u32, flags: u16) -> Error {
    let ifname = x::ifname(ifindex).unwrap_or_else(|| format!("ifindex {ifindex}"));
    match e.raw_os_error() {
        Some(libc::EBUSY) => Error::XdpQueueBusy { ifname, queue },
        Some(libc::ENODEV) | Some(libc::ENXIO) => Error::NoSuchInterface { name: ifname },
        Some(libc::EOPNOTSUPP) if flags & x::XDP_ZEROCOPY != 0 => Error::Unsupported {
            backend: "xdp",
            why: format!(
                "the driver of `{ifname}` has no AF_XDP zero-copy support \
                 (bind(XDP_ZEROCOPY): EOPNOTSUPP)"
            ),
            fix: "allow copy mode (ZeroCopy::Auto or ZeroCopy::Never)",
        },
        Some(libc::EPERM) | Some(libc::EACCES) => Error::NotPermitted {
            call: "bind(AF_XDP)",
            needs: "CAP_NET_RAW",
        },
        _ => Error::Syscall {
            call: "bind(AF_XDP)",
            source: e,
        },
    }
}

/// A bind failure, kept raw so `Auto` can fall back on its errno.
#[derive(Debug)]
struct BindFailed(std::io::Error);

/// Opening one socket failed: at bind (raw, with the flags tried) or before it.
#[derive(Debug)]
enum OpenError {
    Bind(BindFailed, u16),
    Other(Error),
}

impl From<Error> for OpenError {
    fn from(e: Error) -> Self {
        OpenError::Other(e)
    }
}

impl OpenError {
    fn into_error(self, ifindex: u32, queue: u32) -> Error {
        match self {
            OpenError::Bind(BindFailed(e), flags) => bind_error(e, ifindex, queue, flags),
            OpenError::Other(e) => e,
        }
    }
}
