//! Rung 4: AF_XDP. An XDP program redirects each RX queue's frames into an AF_XDP socket; the
//! kernel writes them into a UMEM (memory we own, shared with the kernel) and hands them over
//! through the RX ring. A batch lends the frames in place and gives them back through the fill
//! ring when it drops.
//!
//! Pieces, outermost first:
//! - [`XdpPort`]: the XSKMAP, the redirect program, its attachment (detached on drop) and one
//!   [`XskSocket`] per queue. What a [`Receiver`](crate::Receiver) owns.
//! - [`open_sockets`]: one socket per queue, all sharing one UMEM (`XDP_SHARED_UMEM`), frames
//!   partitioned between them; each socket has its own fill and completion rings (kernel ≥ 5.10).
//! - [`XskSocket`]: fill/completion/RX/TX rings over a slice of the UMEM; `receive`, `send`.
//!
//! Mode: zero-copy where the driver supports it ([`ZeroCopy::Auto`] tries it first), copy mode
//! otherwise (veth: the kernel copies each frame into the UMEM, still no copy to user space).
//! Which one is active is read back from the kernel (`XDP_OPTIONS`), never assumed.
//!
//! Timestamps: AF_XDP has none; every packet of a batch carries the `CLOCK_REALTIME` taken once
//! when the batch was formed.
#![allow(unsafe_code)]

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Duration;

use crate::api::{Capabilities, Packet, MAX_SNAPLEN};
use crate::bpf::{Mode, XdpAttachment, XdpProgram, XskMap};
use crate::ring::xsk::{RingCons, RingIdx, RingLayout, RingProd, Span};
use crate::sys::xdp::{
    self as x, xdp_desc, xdp_mmap_offsets, xdp_options, xdp_ring_offset, xdp_statistics,
    xdp_umem_reg,
};
use crate::sys::{self, Mmap};
use crate::{Error, Result};

/// Whether to use the driver's zero-copy mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ZeroCopy {
    /// Zero-copy if the driver has it, copy mode otherwise (the default).
    #[default]
    Auto,
    /// Zero-copy or fail with [`Error::Unsupported`].
    Require,
    /// Copy mode even where zero-copy would work.
    Never,
}

/// AF_XDP geometry and options.
///
/// The defaults follow LAB-NOTES: an RX ring of 4096 (2048 still lost ~0.5% to `rx_ring_full`),
/// a fill ring twice that, 2 KiB frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct XdpConfig {
    /// Bytes per UMEM frame: 2048 or 4096. One frame holds one packet (plus 256 bytes of
    /// `XDP_PACKET_HEADROOM` the kernel keeps in front of received data).
    pub frame_size: u32,
    /// UMEM frames in all (shared by every queue of a port); a power of two.
    pub frame_count: u32,
    /// RX ring entries per socket; a power of two.
    pub rx_size: u32,
    /// TX ring entries per socket; a power of two. Also the number of TX frames (at most half a
    /// socket's share of the UMEM).
    pub tx_size: u32,
    /// Fill ring entries per socket; a power of two.
    pub fill_size: u32,
    /// Completion ring entries per socket; a power of two.
    pub comp_size: u32,
    /// Ask for `XDP_USE_NEED_WAKEUP`: the kernel says when it needs a syscall, so a busy
    /// receiver makes none.
    pub need_wakeup: bool,
    /// `Some((µs, budget))`: `SO_PREFER_BUSY_POLL`, `SO_BUSY_POLL = µs`,
    /// `SO_BUSY_POLL_BUDGET = budget`.
    pub busy_poll: Option<(u32, u32)>,
    /// Zero-copy policy.
    pub zero_copy: ZeroCopy,
    /// Most descriptors per batch (1 to `rx_size`); set from [`Config::batch_size`](crate::Config::batch_size).
    pub(crate) batch_size: u32,
    /// Bytes of each packet lent (1 to [`MAX_SNAPLEN`]); applied in user space; set from
    /// [`Config::snaplen`](crate::Config::snaplen).
    pub(crate) snaplen: u32,
}

impl Default for XdpConfig {
    fn default() -> Self {
        XdpConfig {
            frame_size: 2048,
            frame_count: 16384,
            rx_size: 4096,
            tx_size: 2048,
            fill_size: 8192,
            comp_size: 2048,
            need_wakeup: true,
            busy_poll: None,
            zero_copy: ZeroCopy::Auto,
            batch_size: 64,
            snaplen: MAX_SNAPLEN,
        }
    }
}

impl XdpConfig {
    /// Checks what needs no kernel, for a port of `queues` sockets.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field and, for sizes, the next power of two.
    pub(crate) fn validate(&self, queues: usize) -> Result<()> {
        let pow2 = |field: &'static str, v: u32| -> Result<()> {
            if v == 0 || !v.is_power_of_two() {
                return Err(Error::InvalidConfig {
                    field,
                    why: format!(
                        "{v} is not a power of two; try {}",
                        v.max(1).checked_next_power_of_two().unwrap_or(1 << 31)
                    ),
                });
            }
            Ok(())
        };
        if self.frame_size != 2048 && self.frame_size != 4096 {
            return Err(Error::InvalidConfig {
                field: "frame_size",
                why: format!("{} is not supported (choose 2048 or 4096)", self.frame_size),
            });
        }
        pow2("frame_count", self.frame_count)?;
        pow2("rx_size", self.rx_size)?;
        pow2("tx_size", self.tx_size)?;
        pow2("fill_size", self.fill_size)?;
        pow2("comp_size", self.comp_size)?;
        if self.batch_size == 0 || self.batch_size > self.rx_size {
            return Err(Error::InvalidConfig {
                field: "batch_size",
                why: format!(
                    "{} is out of range (1 to rx_size, {})",
                    self.batch_size, self.rx_size
                ),
            });
        }
        if self.snaplen == 0 || self.snaplen > MAX_SNAPLEN {
            return Err(Error::InvalidConfig {
                field: "snaplen",
                why: format!("{} is out of range (1 to {MAX_SNAPLEN})", self.snaplen),
            });
        }
        if let Some((_, budget)) = self.busy_poll {
            if budget == 0 || budget > i32::MAX as u32 {
                return Err(Error::InvalidConfig {
                    field: "busy_poll budget",
                    why: format!("{budget} is out of range (1 to 2^31-1; 64 is typical)"),
                });
            }
        }
        let q = u32::try_from(queues.max(1)).unwrap_or(u32::MAX);
        let share = self.frame_count / q;
        if share < 2 {
            return Err(Error::InvalidConfig {
                field: "frame_count",
                why: format!(
                    "{} frames cannot be shared by {queues} sockets (each needs at least 2); try {}",
                    self.frame_count,
                    (2 * q).next_power_of_two()
                ),
            });
        }
        let bytes = u64::from(self.frame_count) * u64::from(self.frame_size);
        if bytes > 1 << 32 {
            return Err(Error::InvalidConfig {
                field: "frame_count",
                why: format!("a UMEM of {bytes} bytes is more than the 4 GiB fastpath allows"),
            });
        }
        Ok(())
    }

    /// How a socket's share of `share` frames splits: (RX frames, TX frames).
    fn split(&self, share: u32) -> (u32, u32) {
        let tx = self.tx_size.min(share / 2);
        let rx = (share - tx).min(self.fill_size);
        (rx, tx)
    }
}

/// The UMEM: `frame_count × frame_size` bytes of anonymous memory registered with the kernel.
///
/// Frames are owned by exactly one party at a time: the kernel (on the fill or TX ring, or
/// being written), or one socket's user side (free TX pool, lent in a batch). Rings hand them
/// over with the Release/Acquire edges documented in `ring/xsk.rs`.
struct Umem {
    map: Mmap,
    frame_size: u32,
    huge: bool,
}

impl fmt::Debug for Umem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Umem")
            .field("len", &self.map.len())
            .field("frame_size", &self.frame_size)
            .field("huge", &self.huge)
            .finish()
    }
}

// SAFETY: the struct itself is immutable after creation; the bytes it covers are accessed only by
// the socket that owns a given frame (frames are partitioned between sockets and handed over by
// the ring protocol), so sharing the owner between threads lets no two threads touch one frame
// without a synchronising ring edge between them.
unsafe impl Sync for Umem {}

impl Umem {
    /// The offset of `[addr, addr + len)` if it lies inside one frame of the UMEM.
    ///
    /// This is the per-descriptor bounds check (STYLE §3): it separates a kernel or logic bug
    /// from undefined behaviour, for the cost of two compares.
    #[inline]
    fn check(&self, addr: u64, len: u32) -> Option<usize> {
        let fs = u64::from(self.frame_size);
        // frame_size is 2048 or 4096 (validated): a mask, not a division, on the hot path.
        let in_frame = addr & (fs - 1);
        if addr >= self.map.len() as u64 || in_frame + u64::from(len) > fs {
            return None;
        }
        Some(addr as usize)
    }

    /// The frame base of `addr` (aligned mode: frames are `frame_size`-aligned offsets).
    #[inline]
    fn base(&self, addr: u64) -> u64 {
        addr & !u64::from(self.frame_size - 1)
    }

    /// Lends `len` bytes at offset `off`.
    ///
    /// # Safety
    /// `off..off + len` passed [`Umem::check`], and the caller owns the frame (acquired from the
    /// RX ring, not yet returned to the fill ring) for as long as the returned borrow lives;
    /// nobody writes it meanwhile.
    #[inline]
    unsafe fn slice(&self, off: usize, len: usize) -> &[u8] {
        // SAFETY: in bounds (checked by the caller through `check`), initialised (the mapping is
        // zero-filled at creation and the kernel wrote the packet before publishing it), and not
        // written while the borrow lives (caller's ownership contract).
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().wrapping_add(off), len) }
    }
}

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
    /// RX descriptors fastpath refused because they pointed outside the UMEM (never, with a
    /// correct kernel).
    pub(crate) rejected_descs: u64,
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
    }
}

type FillRing = RingProd<u64, Mmap>;
type CompRing = RingCons<u64, Mmap>;
type RxRing = RingCons<xdp_desc, Mmap>;
type TxRing = RingProd<xdp_desc, Mmap>;

/// One AF_XDP socket bound to one queue, with its four rings and its share of the UMEM.
// Implementation: this file; rings in `ring/xsk.rs`, syscalls in `sys/xdp.rs`.
#[derive(Debug)]
pub(crate) struct XskSocket {
    // Drop order: the ring mappings go first, then the socket, then (last reference) the UMEM.
    fill: FillRing,
    comp: CompRing,
    rx: RxRing,
    tx: TxRing,
    fd: OwnedFd,
    umem: Arc<Umem>,
    /// TX frames not in the kernel's hands (capacity fixed at open: no allocation later).
    tx_free: Vec<u64>,
    /// TX frames submitted and not yet completed.
    tx_outstanding: u32,
    ifindex: u32,
    queue: u32,
    zero_copy: bool,
    need_wakeup: bool,
    /// The port's program puts back VLAN tags the device stripped (set by the port).
    restores_vlan: bool,
    batch_size: u32,
    snaplen: u32,
    delivered: u64,
    rejected: u64,
}

/// Frames of the UMEM given to one socket: `rx` go on its fill ring, `tx` to its free pool.
#[derive(Debug, Clone, Copy)]
struct Share {
    first: u32,
    rx: u32,
    tx: u32,
}

/// Maps one ring of `size` entries of `T` at `pgoff`.
fn map_ring<T>(
    fd: &OwnedFd,
    off: &xdp_ring_offset,
    size: u32,
    pgoff: i64,
    what: &'static str,
) -> Result<(Mmap, RingLayout)> {
    let layout =
        RingLayout::from_offsets(off).ok_or_else(|| bad_layout(what, "offset overflow"))?;
    let len = layout
        .map_len::<T>(size)
        .ok_or_else(|| bad_layout(what, "ring size overflow"))?;
    let map = Mmap::shared(fd, len, pgoff, what)?;
    Ok((map, layout))
}

fn bad_layout(what: &'static str, why: &'static str) -> Error {
    Error::Unsupported {
        backend: "xdp",
        why: format!("the kernel reported an unusable {what} layout: {why}"),
        fix: "report this kernel version to fastpath",
    }
}

/// Maps a producer ring ([`map_ring`]) and wraps it over its own mapping.
fn prod_ring<T: Copy>(
    fd: &OwnedFd,
    off: &xdp_ring_offset,
    size: u32,
    pgoff: i64,
    what: &'static str,
) -> Result<RingProd<T, Mmap>> {
    let (map, layout) = map_ring::<T>(fd, off, size, pgoff, what)?;
    let base = NonNull::new(map.as_ptr()).expect("a mapping is never at NULL");
    let len = map.len();
    // SAFETY: `map` is the kernel's mapping of this ring (mmapped at its page offset with the
    // length its layout needs) and moves into the view, so it outlives it; Rust never creates a
    // reference over it except to the atomic index words; this is the only producer view.
    unsafe { RingProd::new(map, base, len, layout, size) }.map_err(|e| bad_layout(what, e.0))
}

/// Maps a consumer ring ([`map_ring`]) and wraps it over its own mapping.
fn cons_ring<T: Copy>(
    fd: &OwnedFd,
    off: &xdp_ring_offset,
    size: u32,
    pgoff: i64,
    what: &'static str,
) -> Result<RingCons<T, Mmap>> {
    let (map, layout) = map_ring::<T>(fd, off, size, pgoff, what)?;
    let base = NonNull::new(map.as_ptr()).expect("a mapping is never at NULL");
    let len = map.len();
    // SAFETY: as in `prod_ring`, for the only consumer view of this ring.
    unsafe { RingCons::new(map, base, len, layout, size) }.map_err(|e| bad_layout(what, e.0))
}

fn set_ring_size(fd: &OwnedFd, opt: libc::c_int, size: u32, call: &'static str) -> Result<()> {
    sys::setsockopt(fd, x::SOL_XDP, opt, &(size as libc::c_int), call).map_err(|e| {
        match e.raw_os_error() {
            Some(libc::ENOMEM) => Error::OutOfMemory {
                what: call,
                asked: u64::from(size),
                why: "the kernel could not allocate the ring; use a smaller size".into(),
            },
            _ => e,
        }
    })
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

impl XskSocket {
    /// Creates, sets up and binds one socket. `shared` is the socket that registered the UMEM,
    /// `None` for that first socket itself.
    fn open(
        ifindex: u32,
        queue: u32,
        cfg: &XdpConfig,
        umem: &Arc<Umem>,
        share: Share,
        shared: Option<&XskSocket>,
    ) -> Result<XskSocket> {
        let open = |mode| Self::open_mode(ifindex, queue, cfg, umem, share, shared, mode);
        match (shared, cfg.zero_copy) {
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

    fn open_mode(
        ifindex: u32,
        queue: u32,
        cfg: &XdpConfig,
        umem: &Arc<Umem>,
        share: Share,
        shared: Option<&XskSocket>,
        mode: u16,
    ) -> std::result::Result<XskSocket, OpenError> {
        let fd = x::xsk_socket()?;
        if shared.is_none() {
            register_umem(&fd, umem)?;
        }
        set_ring_size(
            &fd,
            x::XDP_UMEM_FILL_RING,
            cfg.fill_size,
            "setsockopt(XDP_UMEM_FILL_RING)",
        )?;
        set_ring_size(
            &fd,
            x::XDP_UMEM_COMPLETION_RING,
            cfg.comp_size,
            "setsockopt(XDP_UMEM_COMPLETION_RING)",
        )?;
        set_ring_size(&fd, x::XDP_RX_RING, cfg.rx_size, "setsockopt(XDP_RX_RING)")?;
        set_ring_size(&fd, x::XDP_TX_RING, cfg.tx_size, "setsockopt(XDP_TX_RING)")?;
        let off: xdp_mmap_offsets = sys::getsockopt(
            &fd,
            x::SOL_XDP,
            x::XDP_MMAP_OFFSETS,
            "getsockopt(XDP_MMAP_OFFSETS)",
        )?;

        let mut fill: FillRing = prod_ring(
            &fd,
            &off.fr,
            cfg.fill_size,
            x::XDP_UMEM_PGOFF_FILL_RING,
            "fill ring",
        )?;
        let comp: CompRing = cons_ring(
            &fd,
            &off.cr,
            cfg.comp_size,
            x::XDP_UMEM_PGOFF_COMPLETION_RING,
            "completion ring",
        )?;
        let rx: RxRing = cons_ring(&fd, &off.rx, cfg.rx_size, x::XDP_PGOFF_RX_RING, "rx ring")?;
        let tx: TxRing = prod_ring(&fd, &off.tx, cfg.tx_size, x::XDP_PGOFF_TX_RING, "tx ring")?;

        // Our RX frames go on the fill ring before bind, so the first packet finds one.
        let fs = u64::from(umem.frame_size);
        let s = fill.reserve(share.rx);
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

        if let Some((usecs, budget)) = cfg.busy_poll {
            busy_poll(&fd, usecs, budget)?;
        }

        let flags = match shared {
            // Shared sockets inherit copy/zero-copy and need_wakeup from the UMEM's owner; the
            // kernel refuses those flags here (EINVAL).
            Some(_) => x::XDP_SHARED_UMEM,
            None => {
                mode | if cfg.need_wakeup {
                    x::XDP_USE_NEED_WAKEUP
                } else {
                    0
                }
            }
        };
        x::xsk_bind(&fd, ifindex, queue, flags, shared.map(|s| s.fd.as_raw_fd()))
            .map_err(|e| OpenError::Bind(BindFailed(e), flags))?;

        let opts: xdp_options =
            sys::getsockopt(&fd, x::SOL_XDP, x::XDP_OPTIONS, "getsockopt(XDP_OPTIONS)")?;
        let need_wakeup = match shared {
            Some(first) => first.need_wakeup,
            None => cfg.need_wakeup,
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
            batch_size: cfg.batch_size,
            snaplen: cfg.snaplen,
            delivered: 0,
            rejected: 0,
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
    pub(crate) fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// Whether the `need_wakeup` protocol is on.
    #[cfg(test)]
    pub(crate) fn need_wakeup(&self) -> bool {
        self.need_wakeup
    }

    /// `"af_xdp zero-copy"` or `"af_xdp copy"`.
    pub(crate) fn mode_name(&self) -> &'static str {
        if self.zero_copy {
            "af_xdp zero-copy"
        } else {
            "af_xdp copy"
        }
    }

    /// Whether the UMEM is backed by huge pages (`MAP_HUGETLB` succeeded).
    #[cfg(test)]
    pub(crate) fn umem_hugetlb(&self) -> bool {
        self.umem.huge
    }

    /// What this socket can do. `zero_copy` is true in both modes in the sense of
    /// [`Capabilities::zero_copy`] (packets are lent in place from the UMEM, never copied to a
    /// user buffer); `mode` says whether the *driver* copies.
    pub(crate) fn capabilities(&self) -> Capabilities {
        Capabilities {
            zero_copy: true,
            fanout: true,
            tx: true,
            timestamps_ns: false,
            need_wakeup: self.need_wakeup,
            kernel_filter: true,
            driver_zero_copy: self.zero_copy,
            restores_vlan: self.restores_vlan,
            mode: self.mode_name(),
        }
    }

    /// Waits up to `timeout` (`None`: forever) for packets and lends up to `batch_size` of them.
    ///
    /// An empty batch means the timeout passed or a signal arrived.
    ///
    /// # Errors
    /// [`Error::InterfaceGone`] if the device went away; [`Error::Syscall`] for other `poll`
    /// failures.
    #[inline]
    pub(crate) fn receive(&mut self, timeout: Option<Duration>) -> Result<XdpBatch<'_>> {
        let mut span = self.rx.peek(self.batch_size);
        if span.len == 0 && timeout != Some(Duration::ZERO) {
            // Only zero-copy drivers set the fill ring's flag; poll() below also wakes them.
            if self.need_wakeup && self.fill.needs_wakeup() {
                x::kick_rx(&self.fd)?;
            }
            sys::poll_readable(self.fd.as_raw_fd(), timeout)?;
            span = self.rx.peek(self.batch_size);
        }
        let ts_ns = if span.len > 0 { sys::realtime_ns() } else { 0 };
        self.delivered += u64::from(span.len);
        Ok(XdpBatch {
            sock: self,
            span,
            ts_ns,
        })
    }

    /// Hands `span`'s frames back to the kernel: fill ring first (the frames), then the RX
    /// entries. Called when a batch drops.
    fn recycle(&mut self, span: Span) {
        let back = self.fill.reserve(span.len);
        // Frames are conserved: a socket owns at most fill_size RX frames, so the fill ring
        // always has room for every frame we hold.
        debug_assert_eq!(
            back.len, span.len,
            "fill ring has room for every owned frame"
        );
        let mut n = 0;
        for idx in span.iter() {
            let d = self.rx.read(idx);
            if self.umem.check(d.addr, d.len).is_none() {
                self.rejected += 1;
                if d.addr >= self.umem.map.len() as u64 {
                    continue; // not one of our frames: nothing to give back
                }
            }
            if n < back.len {
                self.fill.write(back.start.add(n), self.umem.base(d.addr));
                n += 1;
            }
        }
        self.fill.cancel(back.len - n);
        self.fill.submit(n);
        self.rx.release(span.len);
        if self.need_wakeup && self.fill.needs_wakeup() {
            // Errors here are transient ("try later") or will show on the next receive.
            let _ = x::kick_rx(&self.fd);
        }
    }

    /// Copies frames into free TX frames and queues them; returns how many were queued (fewer
    /// than `frames.len()` when TX frames or ring slots run out: call again, or
    /// [`flush`](Self::flush)).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an empty frame or one larger than a UMEM frame (nothing is
    /// queued then); [`Error::InterfaceGone`]; [`Error::Syscall`] if the kick fails.
    pub(crate) fn send(&mut self, frames: &[&[u8]]) -> Result<usize> {
        let max = self.umem.frame_size as usize;
        if let Some(f) = frames.iter().find(|f| f.is_empty() || f.len() > max) {
            return Err(Error::InvalidConfig {
                field: "frame",
                why: format!("a {}-byte frame cannot be sent (1 to {max} bytes)", f.len()),
            });
        }
        self.reap();
        let want = frames.len().min(self.tx_free.len()) as u32;
        let span = self.tx.reserve(want);
        for (idx, f) in span.iter().zip(frames) {
            let addr = self
                .tx_free
                .pop()
                .expect("reserved at most tx_free.len() slots");
            let off = self
                .umem
                .check(addr, f.len() as u32)
                .expect("free TX frames are frame-aligned offsets inside the UMEM");
            // SAFETY: the frame is in our free pool, so neither the kernel (it completed or never
            // had it) nor another socket (frames are partitioned) touches it; `check` proved
            // [off, off + len) inside one frame of the mapping; source and destination are
            // distinct allocations.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    f.as_ptr(),
                    self.umem.map.as_ptr().wrapping_add(off),
                    f.len(),
                )
            };
            self.tx.write(
                idx,
                xdp_desc {
                    addr,
                    len: f.len() as u32,
                    options: 0,
                },
            );
        }
        // (B) in `submit` orders the frame copies above before the kernel sees the descriptors.
        self.tx.submit(span.len);
        self.tx_outstanding += span.len;
        if span.len > 0 {
            self.kick_tx()?;
        }
        Ok(span.len as usize)
    }

    /// Kicks the kernel if TX frames are outstanding and reaps completions; returns how many TX
    /// frames are still in flight (copy mode sends at most 32 per kick, so loop until 0).
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub(crate) fn flush(&mut self) -> Result<u32> {
        self.reap();
        if self.tx_outstanding > 0 {
            self.kick_tx()?;
            self.reap();
        }
        Ok(self.tx_outstanding)
    }

    fn kick_tx(&mut self) -> Result<()> {
        // Without need_wakeup the kernel never looks at the TX ring by itself in copy mode.
        if !self.need_wakeup || self.tx.needs_wakeup() {
            x::kick_tx(&self.fd)?;
        }
        Ok(())
    }

    /// Moves completed TX frames back to the free pool.
    fn reap(&mut self) {
        let span = self.comp.peek(self.comp.size());
        for idx in span.iter() {
            let addr = self.comp.read(idx);
            if self.tx_free.len() < self.tx_free.capacity() {
                self.tx_free.push(self.umem.base(addr));
            }
        }
        self.comp.release(span.len);
        self.tx_outstanding -= span.len.min(self.tx_outstanding);
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
        })
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

/// `setsockopt(XDP_UMEM_REG)`, naming the memory limit when the kernel refuses to pin it.
fn register_umem(fd: &OwnedFd, umem: &Umem) -> Result<()> {
    let reg = xdp_umem_reg {
        addr: umem.map.as_ptr() as u64,
        len: umem.map.len() as u64,
        chunk_size: umem.frame_size,
        headroom: 0,
        flags: 0,
        tx_metadata_len: 0,
    };
    sys::setsockopt(
        fd,
        x::SOL_XDP,
        x::XDP_UMEM_REG,
        &reg,
        "setsockopt(XDP_UMEM_REG)",
    )
    .map_err(|e| match e {
        Error::NotPermitted { .. } => umem_oom(umem),
        e if matches!(e.raw_os_error(), Some(libc::ENOBUFS | libc::ENOMEM)) => umem_oom(umem),
        e => e,
    })
}

fn umem_oom(umem: &Umem) -> Error {
    let limit = x::memlock_limit();
    let limit = if limit == u64::MAX {
        "unlimited".to_owned()
    } else {
        format!("{limit} bytes")
    };
    Error::OutOfMemory {
        what: "AF_XDP UMEM (XDP_UMEM_REG)",
        asked: umem.map.len() as u64,
        why: format!(
            "the kernel could not pin it: RLIMIT_MEMLOCK allows {limit} without CAP_IPC_LOCK; \
             lower frame_count or frame_size, or run with CAP_IPC_LOCK"
        ),
    }
}

/// `SO_PREFER_BUSY_POLL = 1`, `SO_BUSY_POLL = usecs`, `SO_BUSY_POLL_BUDGET = budget`.
fn busy_poll(fd: &OwnedFd, usecs: u32, budget: u32) -> Result<()> {
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

/// RX queues of `ifindex`, if the driver or sysfs says.
pub(crate) fn rx_queue_count(ifindex: u32) -> Option<(String, u32)> {
    let name = x::ifname(ifindex)?;
    let n = x::rx_queue_count_ethtool(&name).or_else(|| x::rx_queue_count_sysfs(&name))?;
    Some((name, n))
}

/// Checks the queue list against the interface: non-empty, no duplicates, each below the
/// interface's RX queue count. Returns that count, if the driver or sysfs says.
fn check_queues(ifindex: u32, queues: &[u32]) -> Result<Option<u32>> {
    if queues.is_empty() {
        return Err(Error::InvalidConfig {
            field: "queues",
            why: "no queue given (queue 0 is the usual choice)".into(),
        });
    }
    for (i, q) in queues.iter().enumerate() {
        if queues[..i].contains(q) {
            return Err(Error::InvalidConfig {
                field: "queues",
                why: format!("queue {q} is listed twice"),
            });
        }
    }
    if x::ifname(ifindex).is_none() {
        return Err(Error::NoSuchInterface {
            name: format!("ifindex {ifindex}"),
        });
    }
    let Some((name, n)) = rx_queue_count(ifindex) else {
        return Ok(None);
    };
    if let Some(q) = queues.iter().find(|&&q| q >= n) {
        return Err(Error::InvalidConfig {
            field: "queue",
            why: format!(
                "queue {q} does not exist: `{name}` has {n} RX queue{} (0 to {})",
                if n == 1 { "" } else { "s" },
                n - 1
            ),
        });
    }
    Ok(Some(n))
}

/// Checks `cfg` and `queues`, maps a UMEM and opens the sockets ([`open_sockets`]): an
/// [`XdpPort`] without the program, and without its EBUSY retry.
///
/// # Errors
/// As [`XdpPort::open_filtered`], [`Error::XdpAlreadyAttached`] aside.
#[cfg(test)]
pub(crate) fn open_queues(ifindex: u32, queues: &[u32], cfg: &XdpConfig) -> Result<Vec<XskSocket>> {
    cfg.validate(queues.len())?;
    check_queues(ifindex, queues)?;
    let umem = alloc_umem(cfg)?;
    open_sockets(ifindex, queues, cfg, &umem)
}

/// Maps the UMEM of `cfg` (`frame_count × frame_size` bytes; `cfg` validated).
///
/// # Errors
/// [`Error::OutOfMemory`] when the memory cannot be mapped.
fn alloc_umem(cfg: &XdpConfig) -> Result<Arc<Umem>> {
    let len = cfg.frame_count as usize * cfg.frame_size as usize;
    let (map, huge) = x::umem_alloc(len)?;
    Ok(Arc::new(Umem {
        map,
        frame_size: cfg.frame_size,
        huge,
    }))
}

/// Opens one socket per queue of `ifindex`, all sharing `umem` (`XDP_SHARED_UMEM`); the frames
/// are split evenly between them. The first socket registers the UMEM and picks the mode (the
/// others inherit it). `cfg` passed [`XdpConfig::validate`] and `queues` [`check_queues`]. On
/// failure the sockets opened so far close, and `umem` can be used again.
///
/// The sockets receive nothing until an XDP program redirects to them (see [`XdpPort`]).
///
/// # Errors
/// [`Error::Unsupported`] without AF_XDP, or without zero-copy under [`ZeroCopy::Require`];
/// [`Error::OutOfMemory`] when the UMEM cannot be pinned; [`Error::XdpQueueBusy`] if a queue has
/// a socket already.
fn open_sockets(
    ifindex: u32,
    queues: &[u32],
    cfg: &XdpConfig,
    umem: &Arc<Umem>,
) -> Result<Vec<XskSocket>> {
    let per = cfg.frame_count / queues.len() as u32;
    let (rx, tx) = cfg.split(per);
    let mut socks: Vec<XskSocket> = Vec::with_capacity(queues.len());
    for (i, &q) in queues.iter().enumerate() {
        let share = Share {
            first: i as u32 * per,
            rx,
            tx,
        };
        let s = XskSocket::open(ifindex, q, cfg, umem, share, socks.first())?;
        socks.push(s);
    }
    Ok(socks)
}

/// An interface's AF_XDP setup as one owner: the XSKMAP, the redirect program, its attachment
/// and one socket per queue. Dropping it detaches the program first, then closes the sockets.
#[derive(Debug)]
pub(crate) struct XdpPort {
    // Drop order: detach before anything else, so no frame is redirected to a closing socket:
    // `guard` comes first, and its first field is the attachment.
    guard: PortGuard,
    sockets: Vec<XskSocket>,
}

/// The program side of a port, shared by the per-queue handles of one port: the program stays
/// attached until the last handle drops.
#[derive(Debug)]
pub(crate) struct PortGuard {
    // Drop order: the attachment first (detach), then the program and the map.
    attachment: XdpAttachment,
    _prog: XdpProgram,
    _map: XskMap,
}

impl PortGuard {
    /// The program attachment (interface, mode, program id).
    pub(crate) fn attachment(&self) -> &XdpAttachment {
        &self.attachment
    }
}

/// One queue's socket plus a share of its port's program: what a [`Receiver`](crate::Receiver)
/// owns. Field order is drop order: the port's reference goes first, so the last handle of a port
/// detaches the program before its socket closes.
#[derive(Debug)]
pub(crate) struct XdpQueue {
    pub(crate) port: Arc<PortGuard>,
    pub(crate) sock: XskSocket,
}

impl XdpPort {
    /// [`XdpPort::open_filtered`] without a filter.
    #[cfg(test)]
    pub(crate) fn open(
        ifindex: u32,
        queues: &[u32],
        cfg: &XdpConfig,
        mode: Mode,
        replace: bool,
    ) -> Result<XdpPort> {
        XdpPort::open_filtered(ifindex, queues, cfg, mode, replace, None)
    }

    /// Opens sockets on `queues` of `ifindex` ([`open_sockets`]), puts each in the XSKMAP at its
    /// queue id, and attaches the redirect program in `mode` (`replace`: replace a program that
    /// is already attached instead of failing). With `filter`, the program redirects only the
    /// frames the filter accepts and passes the rest to the kernel stack.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for bad sizes, duplicate queues or a queue the interface lacks
    /// (naming the largest); [`Error::OutOfMemory`] when the UMEM cannot be mapped; as
    /// [`open_sockets`] (after a second of [`Error::XdpQueueBusy`]);
    /// [`Error::XdpAlreadyAttached`] when another program is attached and `replace` is false,
    /// and the other errors of [`XdpAttachment::attach`].
    pub(crate) fn open_filtered(
        ifindex: u32,
        queues: &[u32],
        cfg: &XdpConfig,
        mode: Mode,
        replace: bool,
        filter: Option<&crate::filter::Filter>,
    ) -> Result<XdpPort> {
        cfg.validate(queues.len())?;
        let rx_queues = check_queues(ifindex, queues)?;
        let slots = rx_queues
            .unwrap_or(0)
            .max(queues.iter().max().map_or(1, |m| m + 1));
        let map = XskMap::new(slots)?;
        // Native mode: a device-bound program that also puts back VLAN tags the device
        // stripped, where kernel and driver allow (generic mode cannot run device-bound ones).
        let prog = match (mode, filter) {
            (Mode::Native, f) => XdpProgram::redirect_native(&map, f, ifindex)?,
            (_, Some(f)) => XdpProgram::redirect_filtered(&map, f)?,
            (_, None) => XdpProgram::redirect(&map)?,
        };
        // Attach first: a foreign program is reported before any memory is pinned. Frames of
        // queues whose slot is still empty go to the stack (XDP_PASS) meanwhile.
        let attachment = XdpAttachment::attach(&prog, ifindex, mode, replace)?;
        let umem = alloc_umem(cfg)?;
        // A socket closed just before (a previous run on the same queue) releases the queue
        // asynchronously in the kernel: bind then fails with EBUSY for a few milliseconds. Only
        // the sockets are opened again; the UMEM is kept. (A queue binds only once the kernel has
        // released the previous socket's pool on it, driver DMA included, and frame contents
        // matter only once the kernel publishes them on the new RX ring.)
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        let sockets = loop {
            match open_sockets(ifindex, queues, cfg, &umem) {
                Err(Error::XdpQueueBusy { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                r => break r?,
            }
        };
        let mut sockets = sockets;
        for s in &mut sockets {
            s.restores_vlan = prog.restores_vlan();
            map.set(s.queue, s.fd())?;
        }
        Ok(XdpPort {
            guard: PortGuard {
                attachment,
                _prog: prog,
                _map: map,
            },
            sockets,
        })
    }

    /// The sockets, in the order of the queues given to `open`.
    #[cfg(test)]
    pub(crate) fn sockets(&self) -> &[XskSocket] {
        &self.sockets
    }

    /// The sockets, mutably (one per thread: each is `Send`).
    #[cfg(test)]
    pub(crate) fn sockets_mut(&mut self) -> &mut [XskSocket] {
        &mut self.sockets
    }

    /// Splits the port into one handle per queue (in the order given to `open`), each keeping
    /// the program attached while it lives.
    pub(crate) fn into_queues(self) -> Vec<XdpQueue> {
        let port = Arc::new(self.guard);
        self.sockets
            .into_iter()
            .map(|sock| XdpQueue {
                port: Arc::clone(&port),
                sock,
            })
            .collect()
    }

    #[cfg(test)]
    /// Counters of all sockets, summed.
    ///
    /// # Errors
    /// As [`XskSocket::stats`].
    pub(crate) fn stats(&self) -> Result<XdpStats> {
        let mut all = XdpStats::default();
        for s in &self.sockets {
            all.merge(&s.stats()?);
        }
        Ok(all)
    }
}

/// Packets lent by one [`XskSocket::receive`]; dropping the batch returns the frames to the
/// fill ring and releases the RX entries.
#[derive(Debug)]
#[must_use = "a batch holds UMEM frames until it is dropped"]
pub(crate) struct XdpBatch<'a> {
    sock: &'a mut XskSocket,
    span: Span,
    ts_ns: u64,
}

impl XdpBatch<'_> {
    /// RX descriptors in the batch. (A descriptor failing the UMEM bounds check, which a correct
    /// kernel never produces, is counted here but skipped by the iterator.)
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.span.len as usize
    }

    /// The packets in arrival order.
    #[inline]
    pub(crate) fn iter(&self) -> XdpIter<'_> {
        XdpIter {
            rx: &self.sock.rx,
            umem: &self.sock.umem,
            next: self.span.start,
            left: self.span.len,
            ts_ns: self.ts_ns,
            ifindex: self.sock.ifindex,
            queue: self.sock.queue,
            snaplen: self.sock.snaplen,
        }
    }
}

impl Drop for XdpBatch<'_> {
    fn drop(&mut self) {
        if self.span.len > 0 {
            self.sock.recycle(self.span);
        }
    }
}

/// Iterator over the packets of an [`XdpBatch`].
#[derive(Debug)]
pub(crate) struct XdpIter<'b> {
    rx: &'b RxRing,
    umem: &'b Umem,
    next: RingIdx,
    left: u32,
    ts_ns: u64,
    ifindex: u32,
    queue: u32,
    snaplen: u32,
}

impl<'b> Iterator for XdpIter<'b> {
    type Item = Packet<'b>;

    #[inline]
    fn next(&mut self) -> Option<Packet<'b>> {
        while self.left > 0 {
            let d = self.rx.read(self.next);
            self.next = self.next.add(1);
            self.left -= 1;
            let Some(off) = self.umem.check(d.addr, d.len) else {
                continue;
            };
            let cap = d.len.min(self.snaplen) as usize;
            // SAFETY: `check` proved [off, off + len) inside one UMEM frame; the descriptor was
            // peeked in `receive` ((C) made the kernel's frame write visible) and its frame goes
            // back to the fill ring only when the batch drops, which cannot happen while this
            // iterator (borrowing the batch for 'b) or a slice from it lives.
            let data = unsafe { self.umem.slice(off, cap) };
            return Some(Packet {
                data,
                orig_len: d.len,
                ts_ns: self.ts_ns,
                ifindex: self.ifindex,
                queue: Some(self.queue),
            });
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left as usize))
    }
}

impl<'b> IntoIterator for &'b XdpBatch<'_> {
    type Item = Packet<'b>;
    type IntoIter = XdpIter<'b>;

    fn into_iter(self) -> XdpIter<'b> {
        self.iter()
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn config_errors_name_the_field() {
        let d = XdpConfig::default();
        d.validate(1).unwrap();
        d.validate(4).unwrap();
        // (change to the defaults, sockets, test of the message)
        type Case = (fn(&mut XdpConfig), usize, fn(&str) -> bool);
        let cases: [Case; 5] = [
            (
                |c| c.fill_size = 3000,
                1,
                |m| m == "invalid fill_size: 3000 is not a power of two; try 4096",
            ),
            (|c| c.rx_size = 0, 1, |m| m.starts_with("invalid rx_size")),
            (|c| c.frame_size = 1000, 1, |m| m.contains("2048 or 4096")),
            (
                |c| c.frame_count = 4,
                4,
                |m| m.starts_with("invalid frame_count"),
            ),
            (
                |c| c.batch_size = 8192,
                1,
                |m| m.starts_with("invalid batch_size"),
            ),
        ];
        for (change, queues, check) in cases {
            let mut cfg = d;
            change(&mut cfg);
            let e = cfg.validate(queues).unwrap_err();
            assert!(check(&e.to_string()), "{e}");
        }
    }

    #[test]
    fn sockets_and_ports_move_between_threads() {
        fn assert_send<T: Send>() {}
        assert_send::<XskSocket>();
        assert_send::<XdpPort>();
    }

    #[test]
    fn defaults_follow_lab_notes() {
        let d = XdpConfig::default();
        assert!(d.rx_size >= 4096);
        assert!(d.fill_size >= 2 * d.rx_size);
        assert!(d.need_wakeup);
    }

    #[test]
    fn split_conserves_frames() {
        let d = XdpConfig::default();
        let (rx, tx) = d.split(8192);
        assert_eq!((rx, tx), (6144, 2048));
        let (rx, tx) = d.split(16384);
        assert_eq!((rx, tx), (8192, 2048), "rx capped at the fill ring size");
        let (rx, tx) = d.split(2);
        assert_eq!((rx, tx), (1, 1));
    }
}

/// Tier 1: root, a private network namespace and a veth pair, real kernel.
///
/// These live in the crate (not in `tests/`) because the xdp backend is crate-private until it
/// is wired into `Receiver`; they use only `fastpath_testutil` besides this module.
#[cfg(test)]
mod root {
    use super::*;
    use crate::bpf;
    use fastpath_testutil::{
        assert_frames_eq, frame_seq, is_root, require, udp_frame, NetNs, RawReceiver, RawSender,
        Veth, DST_MAC,
    };
    use std::time::Instant;

    fn small() -> XdpConfig {
        XdpConfig {
            frame_count: 4096,
            rx_size: 1024,
            fill_size: 2048,
            tx_size: 512,
            comp_size: 512,
            ..XdpConfig::default()
        }
    }

    fn frames(n: u32, veth: &Veth) -> Vec<Vec<u8>> {
        // Sizes sweep 60..=1514.
        (0..n)
            .map(|s| udp_frame(s, 60 + (s as usize * 97) % 1455, DST_MAC, veth.a_mac))
            .collect()
    }

    /// Receives until `n` packets arrived on any socket or `timeout` passed.
    fn collect(socks: &mut [XskSocket], n: usize, timeout: Duration) -> Vec<(u32, Vec<u8>)> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        while got.len() < n && Instant::now() < deadline {
            for s in socks.iter_mut() {
                let b = s.receive(Some(Duration::from_millis(5))).expect("receive");
                for p in &b {
                    assert_eq!(p.orig_len() as usize, p.data().len());
                    assert!(p.timestamp_ns() > 0);
                    got.push((
                        p.queue().expect("AF_XDP knows the queue"),
                        p.data().to_vec(),
                    ));
                }
            }
        }
        got
    }

    fn no_xdp_left(ns: &NetNs, veth: &Veth) {
        for (name, idx) in [(&veth.a, veth.a_index), (&veth.b, veth.b_index)] {
            assert!(
                bpf::attached(idx).unwrap().is_empty(),
                "program left on {name}"
            );
            let out = ns
                .exec("ip", ["-o", "link", "show", name.as_str()])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(!text.contains("xdp"), "ip link still shows xdp: {text}");
        }
    }

    #[test]
    fn rx_copy_mode_byte_exact_in_order() {
        require!(is_root(), "needs root for network namespaces and AF_XDP");
        let ns = NetNs::new("fpx");
        let veth = ns.veth_pair("fpa", "fpb");
        {
            let mut port =
                XdpPort::open(veth.b_index, &[0], &small(), Mode::Native, false).expect("open");
            let s = &port.sockets()[0];
            assert!(!s.zero_copy(), "veth has no zero-copy AF_XDP");
            assert_eq!(s.mode_name(), "af_xdp copy");
            assert!(s.need_wakeup());
            eprintln!(
                "mode {}, hugetlb UMEM {}, fill need_wakeup {}, tx need_wakeup {}",
                s.mode_name(),
                s.umem_hugetlb(),
                s.fill.needs_wakeup(),
                s.tx.needs_wakeup()
            );
            let sent = frames(300, &veth);
            RawSender::new(&veth.a).unwrap().send_all(&sent).unwrap();
            let got = collect(port.sockets_mut(), sent.len(), Duration::from_secs(5));
            assert!(got.iter().all(|(q, _)| *q == 0));
            let data: Vec<&[u8]> = got.iter().map(|(_, d)| d.as_slice()).collect();
            assert_frames_eq(&data, &sent);
            let st = port.stats().unwrap();
            eprintln!("{st:?}");
            assert_eq!(st.delivered, 300);
            assert_eq!(
                (st.rx_ring_full, st.rx_invalid_descs, st.rejected_descs),
                (0, 0, 0)
            );

            // Frames were recycled: a second round through the same fill ring works.
            let again = frames(300, &veth);
            RawSender::new(&veth.a).unwrap().send_all(&again).unwrap();
            let got = collect(port.sockets_mut(), again.len(), Duration::from_secs(5));
            let data: Vec<&[u8]> = got.iter().map(|(_, d)| d.as_slice()).collect();
            assert_frames_eq(&data, &again);
        }
        no_xdp_left(&ns, &veth);
    }

    #[test]
    fn snaplen_is_applied() {
        require!(is_root(), "needs root for network namespaces and AF_XDP");
        let ns = NetNs::new("fpx");
        let veth = ns.veth_pair("fpa", "fpb");
        let cfg = XdpConfig {
            snaplen: 64,
            ..small()
        };
        let mut port = XdpPort::open(veth.b_index, &[0], &cfg, Mode::Native, false).unwrap();
        let sent = frames(20, &veth);
        RawSender::new(&veth.a).unwrap().send_all(&sent).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut n = 0;
        while n < sent.len() && Instant::now() < deadline {
            let b = port.sockets_mut()[0]
                .receive(Some(Duration::from_millis(50)))
                .unwrap();
            for p in &b {
                let s = &sent[n];
                assert_eq!(p.orig_len() as usize, s.len());
                assert_eq!(p.data(), &s[..s.len().min(64)]);
                n += 1;
            }
        }
        assert_eq!(n, sent.len());
    }

    #[test]
    fn zero_copy_required_on_veth_fails_clearly() {
        require!(is_root(), "needs root for network namespaces and AF_XDP");
        let ns = NetNs::new("fpx");
        let veth = ns.veth_pair("fpa", "fpb");
        let cfg = XdpConfig {
            zero_copy: ZeroCopy::Require,
            ..small()
        };
        let e = XdpPort::open(veth.b_index, &[0], &cfg, Mode::Native, false).unwrap_err();
        let msg = e.to_string();
        eprintln!("{msg}");
        assert!(matches!(e, Error::Unsupported { .. }), "{e:?}");
        assert!(msg.contains("zero-copy") && msg.contains("fpb"), "{msg}");
        // The failed open left nothing attached, and copy mode works right after.
        no_xdp_left(&ns, &veth);
        let cfg = XdpConfig {
            zero_copy: ZeroCopy::Never,
            ..small()
        };
        let port = XdpPort::open(veth.b_index, &[0], &cfg, Mode::Native, false).unwrap();
        assert_eq!(port.sockets()[0].mode_name(), "af_xdp copy");
    }

    #[test]
    fn bad_queue_and_foreign_program_are_named() {
        require!(is_root(), "needs root for network namespaces and AF_XDP");
        let ns = NetNs::new("fpx");
        let veth = ns.veth_pair("fpa", "fpb");
        let e = XdpPort::open(veth.b_index, &[3], &small(), Mode::Native, false).unwrap_err();
        assert!(
            matches!(e, Error::InvalidConfig { field: "queue", .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains("0 to 0"), "{e}");
        let e = XdpPort::open(veth.b_index, &[0, 0], &small(), Mode::Native, false).unwrap_err();
        assert!(e.to_string().contains("listed twice"), "{e}");

        let pass = bpf::XdpProgram::pass().unwrap();
        let other = bpf::XdpAttachment::attach(&pass, veth.b_index, Mode::Native, false).unwrap();
        let e = XdpPort::open(veth.b_index, &[0], &small(), Mode::Native, false).unwrap_err();
        assert!(matches!(e, Error::XdpAlreadyAttached { .. }), "{e:?}");
        drop(other);
        no_xdp_left(&ns, &veth);
    }

    #[test]
    fn second_socket_on_a_queue_is_busy() {
        require!(is_root(), "needs root for network namespaces and AF_XDP");
        let ns = NetNs::new("fpx");
        let veth = ns.veth_pair("fpa", "fpb");
        let _first = open_queues(veth.b_index, &[0], &small()).unwrap();
        let e = open_queues(veth.b_index, &[0], &small()).unwrap_err();
        assert!(matches!(e, Error::XdpQueueBusy { queue: 0, .. }), "{e:?}");
    }

    #[test]
    fn two_queues_share_one_umem() {
        require!(is_root(), "needs root for network namespaces and AF_XDP");
        let ns = NetNs::new("fpx");
        let veth = ns.veth_pair_queues("fpa", "fpb", 2);
        {
            let mut port =
                XdpPort::open(veth.b_index, &[0, 1], &small(), Mode::Native, false).unwrap();
            let socks = port.sockets();
            assert_eq!(socks.len(), 2);
            assert_eq!((socks[0].queue(), socks[1].queue()), (0, 1));
            assert!(Arc::ptr_eq(&socks[0].umem, &socks[1].umem), "one UMEM");
            assert_eq!(
                socks[1].mode_name(),
                "af_xdp copy",
                "inherited from the UMEM owner"
            );
            assert!(socks[1].need_wakeup(), "inherited from the UMEM owner");

            let sent = frames(300, &veth);
            RawSender::new(&veth.a).unwrap().send_all(&sent).unwrap();
            let mut got = collect(port.sockets_mut(), sent.len(), Duration::from_secs(5));
            let per_q = [0, 1].map(|q| got.iter().filter(|(g, _)| *g == q).count());
            eprintln!("frames per queue: {per_q:?}");
            got.sort_by_key(|(_, d)| frame_seq(d));
            let data: Vec<&[u8]> = got.iter().map(|(_, d)| d.as_slice()).collect();
            assert_frames_eq(&data, &sent);
            let st = port.stats().unwrap();
            assert_eq!(st.delivered, 300);
        }
        no_xdp_left(&ns, &veth);
    }

    #[test]
    fn tx_byte_exact() {
        require!(is_root(), "needs root for network namespaces and AF_XDP");
        let ns = NetNs::new("fpx");
        let veth = ns.veth_pair("fpa", "fpb");
        let rx = RawReceiver::new(&veth.b).unwrap();
        let mut socks = open_queues(veth.a_index, &[0], &small()).unwrap();
        let s = &mut socks[0];
        let sent = frames(100, &veth);
        let refs: Vec<&[u8]> = sent.iter().map(|f| f.as_slice()).collect();
        let mut queued = 0;
        let deadline = Instant::now() + Duration::from_secs(5);
        while queued < refs.len() && Instant::now() < deadline {
            queued += s.send(&refs[queued..]).unwrap();
        }
        assert_eq!(queued, refs.len());
        while s.flush().unwrap() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(s.flush().unwrap(), 0, "every frame completed");
        let got = rx.collect(sent.len(), Duration::from_secs(5)).unwrap();
        assert_frames_eq(&got, &sent);
        let st = s.stats().unwrap();
        assert_eq!(st.tx_invalid_descs, 0);
        // Oversized frames are refused before anything is queued.
        let big = vec![0u8; 4097];
        assert!(matches!(
            s.send(&[&big]),
            Err(Error::InvalidConfig { field: "frame", .. })
        ));
    }
}
