//! The receive handle and the contract every rung implements.
//!
//! # The contract (what each `backend/<rung>.rs` provides)
//! - `open(cfg, ifindex) -> Result<Self>`: validated config in, a bound, ready socket out.
//! - `receive(&mut self, timeout) -> Result<Batch<'_>>`: waits at most `timeout` for packets and
//!   lends them as one [`Batch`]; an empty batch means "nothing yet" (timeout or signal).
//!   Returning frames to the kernel happens when the batch is dropped.
//! - `stats(&mut self) -> Result<Stats>`: exact kernel counters accumulated since `open`.
//! - `capabilities(&self) -> Capabilities`.
//! - `fd(&self) -> BorrowedFd`: the descriptor to wait on.
//!
//! [`Receiver`] dispatches with a `match` once per batch (never per packet through `dyn`); a
//! batch iterator matches on a discriminant that does not change within the batch, which the
//! branch predictor makes free.

#[cfg(feature = "dpdk")]
pub(crate) mod dpdk;
pub(crate) mod mmap;
pub(crate) mod recv;
pub(crate) mod xdp;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use crate::api::{Backend, Capabilities, Config, Packet, Stats};
use crate::{sys, Error, Result};

/// A receive handle on one interface, with the backend chosen in its [`Config`].
///
/// ```no_run
/// use std::time::Duration;
/// use fastpath::{Backend, Config, Receiver};
///
/// let mut rx = Receiver::open(&Config::new("eth0").backend(Backend::Mmap))?;
/// for _ in 0..1000 {
///     let batch = rx.recv(Some(Duration::from_millis(100)))?;
///     for pkt in &batch {
///         println!("{} bytes at {}", pkt.orig_len(), pkt.timestamp_ns());
///     }
///     // dropping `batch` hands its frames back to the kernel
/// }
/// # Ok::<(), fastpath::Error>(())
/// ```
#[derive(Debug)]
pub struct Receiver {
    inner: Inner,
    backend: Backend,
    interface: String,
    ifindex: u32,
}

#[derive(Debug)]
enum Inner {
    Recv(recv::RecvSocket),
    Mmap(mmap::MmapSocket),
    Xdp(xdp::XdpQueue),
    #[cfg(feature = "dpdk")]
    Dpdk(dpdk::DpdkQueue),
}

impl Receiver {
    /// Opens, configures and binds a socket on `cfg.interface()` with the configured backend.
    ///
    /// When this returns, the socket receives: packets arriving from now on are captured.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for out-of-range values, [`Error::NoSuchInterface`],
    /// [`Error::InterfaceDown`], [`Error::NotPermitted`] without `CAP_NET_RAW`,
    /// [`Error::OutOfMemory`] when the ring cannot be allocated, [`Error::Unsupported`] for a
    /// backend missing from this build.
    pub fn open(cfg: &Config) -> Result<Self> {
        cfg.validate()?;
        let ifindex;
        let inner = match cfg.backend {
            Backend::Recv | Backend::RecvBatch => {
                ifindex = sys::ifindex(&cfg.interface)?;
                Inner::Recv(recv::RecvSocket::open(cfg, ifindex)?)
            }
            Backend::Mmap => {
                ifindex = sys::ifindex(&cfg.interface)?;
                Inner::Mmap(mmap::MmapSocket::open(cfg, ifindex)?)
            }
            Backend::Xdp => {
                let mut all = open_queues(cfg, &[cfg.queue])?;
                return Ok(all.pop().expect("one receiver per queue asked for"));
            }
            #[cfg(feature = "dpdk")]
            Backend::Dpdk => {
                let mut all = dpdk::open_receivers(cfg, &[cfg.queue])?;
                return Ok(all.pop().expect("one receiver per queue asked for"));
            }
            #[cfg(not(feature = "dpdk"))]
            Backend::Dpdk => {
                return Err(Error::Unsupported {
                    backend: "dpdk",
                    why: "fastpath was built without DPDK support".into(),
                    fix: "rebuild with --features dpdk",
                })
            }
        };
        Ok(Receiver {
            inner,
            backend: cfg.backend,
            interface: cfg.interface.clone(),
            ifindex,
        })
    }

    /// Waits up to `timeout` (`None`: forever) for packets and lends them as a batch.
    ///
    /// An empty batch means the timeout passed or a signal arrived; check your stop condition
    /// and call again. The packets borrow the handle: drop the batch (or call
    /// [`Batch::release`]) to hand the frames back before the next call.
    ///
    /// # Errors
    /// [`Error::InterfaceGone`] if the interface disappeared; [`Error::Syscall`] otherwise.
    #[inline]
    pub fn recv(&mut self, timeout: Option<Duration>) -> Result<Batch<'_>> {
        match &mut self.inner {
            Inner::Recv(s) => s.receive(timeout),
            Inner::Mmap(s) => s.receive(timeout),
            // DPDK names its own errors (the device, or its kernel interface).
            #[cfg(feature = "dpdk")]
            Inner::Dpdk(q) => return q.receive(timeout),
            Inner::Xdp(q) => q.sock.receive(timeout).map(|b| Batch {
                inner: BatchInner::Xdp(b),
            }),
        }
        .map_err(|e| match e {
            // The socket only knows "down" (ENETDOWN) or "gone" (ENODEV); removing an interface
            // takes it down first, so ask the kernel which one holds now.
            Error::InterfaceGone { .. } | Error::InterfaceDown { .. } => {
                let name = self.interface.clone();
                match sys::ifindex(&name) {
                    Ok(i) if i == self.ifindex => Error::InterfaceDown { name },
                    _ => Error::InterfaceGone { name },
                }
            }
            e => e,
        })
    }

    /// Exact counters since the handle was opened.
    ///
    /// # Errors
    /// [`Error::Syscall`] if the kernel refuses `PACKET_STATISTICS` (it does not in practice).
    pub fn stats(&mut self) -> Result<Stats> {
        match &mut self.inner {
            Inner::Recv(s) => s.stats(),
            Inner::Mmap(s) => s.stats(),
            #[cfg(feature = "dpdk")]
            Inner::Dpdk(q) => q.stats(),
            Inner::Xdp(q) => q.sock.stats().map(|k| {
                let dropped = k.rx_dropped + k.rx_ring_full;
                Stats {
                    received: k.delivered + dropped,
                    dropped,
                    delivered: k.delivered,
                    rx_ring_full: k.rx_ring_full,
                    fill_ring_empty: k.rx_fill_ring_empty_descs,
                    invalid_descs: k.rx_invalid_descs + k.tx_invalid_descs,
                    tx_ring_empty: k.tx_ring_empty_descs,
                    ..Stats::default()
                }
            }),
        }
    }

    /// What this handle can do.
    pub fn capabilities(&self) -> Capabilities {
        match &self.inner {
            Inner::Recv(s) => s.capabilities(),
            Inner::Mmap(s) => s.capabilities(),
            #[cfg(feature = "dpdk")]
            Inner::Dpdk(q) => q.capabilities(),
            Inner::Xdp(q) => q.sock.capabilities(),
        }
    }

    /// The receive queue this handle is bound to, where the backend binds to one (`xdp`).
    pub fn queue(&self) -> Option<u32> {
        match &self.inner {
            Inner::Xdp(q) => Some(q.sock.queue()),
            #[cfg(feature = "dpdk")]
            Inner::Dpdk(q) => Some(q.queue()),
            _ => None,
        }
    }

    /// Whether the XDP program runs in the driver (native) or generic mode (`xdp` only).
    pub fn xdp_mode(&self) -> Option<crate::bpf::Mode> {
        match &self.inner {
            Inner::Xdp(q) => Some(q.port.attachment().mode()),
            _ => None,
        }
    }

    /// Queues `frames` for transmission on the handle's interface and queue; returns how many
    /// were queued (fewer when the TX ring or its frames are exhausted: call
    /// [`Receiver::flush`] and retry). Frames are copied into the backend's own memory.
    ///
    /// # Errors
    /// [`Error::Unsupported`] on backends without TX (see [`Capabilities::tx`]);
    /// [`Error::InvalidConfig`] for an empty or oversized frame.
    pub fn send(&mut self, frames: &[&[u8]]) -> Result<usize> {
        match &mut self.inner {
            Inner::Xdp(q) => q.sock.send(frames),
            #[cfg(feature = "dpdk")]
            Inner::Dpdk(q) => q.send(frames),
            _ => Err(no_tx(self.backend)),
        }
    }

    /// Pushes queued frames to the device and reaps completions; returns how many frames are
    /// still in flight (0: all sent).
    ///
    /// # Errors
    /// As [`Receiver::send`].
    pub fn flush(&mut self) -> Result<u32> {
        match &mut self.inner {
            Inner::Xdp(q) => q.sock.flush(),
            // DPDK hands frames to the driver in `send`: nothing waits in fastpath.
            #[cfg(feature = "dpdk")]
            Inner::Dpdk(_) => Ok(0),
            _ => Err(no_tx(self.backend)),
        }
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The interface name.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// The interface index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The fanout group this socket joined, if [`Config::fanout`] was set.
    pub fn fanout_group(&self) -> Option<u16> {
        match &self.inner {
            Inner::Recv(s) => s.fanout_group,
            Inner::Mmap(s) => s.fanout_group,
            // AF_XDP queues and DPDK spread packets without a PACKET_FANOUT group.
            Inner::Xdp(_) => None,
            #[cfg(feature = "dpdk")]
            Inner::Dpdk(_) => None,
        }
    }
}

impl AsFd for Receiver {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.inner {
            Inner::Recv(s) => s.fd(),
            Inner::Mmap(s) => s.fd(),
            #[cfg(feature = "dpdk")]
            Inner::Dpdk(q) => q.fd(),
            Inner::Xdp(q) => q.sock.fd(),
        }
    }
}

impl AsRawFd for Receiver {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

/// Reads (and so resets) an AF_PACKET socket's `PACKET_STATISTICS` and adds them to `stats`:
/// the kernel counts since the last read, fastpath accumulates since `open`. On a non-V3 socket
/// the kernel writes only the first two fields and `tp_freeze_q_cnt` stays 0.
fn add_packet_statistics(fd: &std::os::fd::OwnedFd, stats: &mut Stats) -> Result<()> {
    let k = crate::sys::packet::statistics(fd)?;
    stats.received += u64::from(k.tp_packets);
    stats.dropped += u64::from(k.tp_drops);
    stats.freeze_queue += u64::from(k.tp_freeze_q_cnt);
    Ok(())
}

fn no_tx(backend: Backend) -> Error {
    Error::Unsupported {
        backend: backend.name(),
        why: "this backend only receives".into(),
        fix: "transmit with -b xdp (AF_XDP TX ring)",
    }
}

/// Opens one [`Backend::Xdp`] handle per queue of `cfg.interface()`, all sharing one UMEM and one
/// XDP program (attached with `cfg`'s mode; detached when the last handle drops). Drive each
/// handle from its own thread.
///
/// # Errors
/// As [`Receiver::open`]; [`Error::InvalidConfig`] for an empty or duplicate queue list or a
/// queue the interface does not have; [`Error::WouldTakeTraffic`] when the interface has IP
/// addresses and [`Config::take`] was not given; [`Error::XdpAlreadyAttached`] when another
/// program is attached; [`Error::Unsupported`] without AF_XDP or native XDP support.
pub fn open_queues(cfg: &Config, queues: &[u32]) -> Result<Vec<Receiver>> {
    #[cfg(feature = "dpdk")]
    if cfg.backend == Backend::Dpdk {
        return dpdk::open_receivers(cfg, queues);
    }
    cfg.validate()?;
    let ifindex = sys::ifindex(&cfg.interface)?;
    let probe = sys::packet_socket();
    if let Ok(fd) = &probe {
        sys::ensure_up(fd, &cfg.interface)?;
    }
    // With a filter, frames it rejects stay with the kernel stack: nothing is taken wholesale.
    if !cfg.take && cfg.filter.is_none() {
        let addrs = sys::interface_addresses(&cfg.interface)?;
        if !addrs.is_empty() {
            return Err(Error::WouldTakeTraffic {
                name: cfg.interface.clone(),
                addrs: addrs.join(", "),
            });
        }
    }
    let mut xcfg = cfg.xdp;
    xcfg.snaplen = cfg.snaplen;
    xcfg.batch_size = cfg.batch_size as u32;
    let port = xdp::XdpPort::open_filtered(
        ifindex,
        queues,
        &xcfg,
        cfg.xdp_mode,
        cfg.xdp_replace,
        cfg.filter.as_ref(),
    )?;
    Ok(port
        .into_queues()
        .into_iter()
        .map(|q| Receiver {
            inner: Inner::Xdp(q),
            backend: Backend::Xdp,
            interface: cfg.interface.clone(),
            ifindex,
        })
        .collect())
}

/// The number of receive queues of `interface` (for `--queues all`).
///
/// # Errors
/// [`Error::NoSuchInterface`].
pub fn rx_queue_count(interface: &str) -> Result<u32> {
    let ifindex = sys::ifindex(interface)?;
    Ok(xdp::rx_queue_count(ifindex).map_or(1, |(_, n)| n.max(1)))
}

/// Opens `n` handles on one interface joined in one `PACKET_FANOUT` group, one per thread.
///
/// The kernel spreads packets over the members according to `mode`; each handle is then driven
/// by its own thread. Sum their counters with [`Stats::merge`].
///
/// # Errors
/// As [`Receiver::open`]; [`Error::InvalidConfig`] if `n` is 0 or above 64.
pub fn open_fanout(cfg: &Config, n: usize, mode: crate::FanoutMode) -> Result<Vec<Receiver>> {
    if n == 0 || n > 64 {
        return Err(Error::InvalidConfig {
            field: "threads",
            why: format!("{n} is out of range (1 to 64)"),
        });
    }
    // DPDK spreads flows over queues with RSS instead of a fanout group.
    #[cfg(feature = "dpdk")]
    if cfg.backend == Backend::Dpdk {
        return dpdk::open_receivers(cfg, &(0..n as u32).collect::<Vec<_>>());
    }
    let first = Receiver::open(&cfg.clone().fanout(mode, None))?;
    let group = first
        .fanout_group()
        .expect("a socket opened with fanout reports its group");
    let mut all = Vec::with_capacity(n);
    all.push(first);
    for _ in 1..n {
        all.push(Receiver::open(&cfg.clone().fanout(mode, Some(group)))?);
    }
    Ok(all)
}

/// Packets lent by a [`Receiver`]; dropping the batch returns its frames to the kernel.
#[derive(Debug)]
#[must_use = "a batch holds ring frames until it is dropped"]
pub struct Batch<'a> {
    inner: BatchInner<'a>,
}

#[derive(Debug)]
enum BatchInner<'a> {
    Owned(recv::OwnedBatch<'a>),
    Block(mmap::BlockBatch<'a>),
    Xdp(xdp::XdpBatch<'a>),
    #[cfg(feature = "dpdk")]
    Dpdk(dpdk::DpdkBatch<'a>),
}

impl<'a> Batch<'a> {
    /// Number of packets in the batch.
    #[inline]
    pub fn len(&self) -> usize {
        match &self.inner {
            BatchInner::Owned(b) => b.len(),
            BatchInner::Block(b) => b.len(),
            BatchInner::Xdp(b) => b.len(),
            #[cfg(feature = "dpdk")]
            BatchInner::Dpdk(b) => b.len(),
        }
    }

    /// Whether the batch holds no packet (the wait timed out or was interrupted).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Iterates over the packets in arrival order.
    #[inline]
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            inner: match &self.inner {
                BatchInner::Owned(b) => IterInner::Owned(b.iter()),
                BatchInner::Block(b) => IterInner::Block(b.iter()),
                BatchInner::Xdp(b) => IterInner::Xdp(b.iter()),
                #[cfg(feature = "dpdk")]
                BatchInner::Dpdk(b) => IterInner::Dpdk(b.iter()),
            },
        }
    }

    /// Hands the frames back to the kernel now (the same as dropping the batch).
    #[inline]
    pub fn release(self) {}
}

impl<'b> IntoIterator for &'b Batch<'_> {
    type Item = Packet<'b>;
    type IntoIter = Iter<'b>;

    #[inline]
    fn into_iter(self) -> Iter<'b> {
        self.iter()
    }
}

/// Iterator over the packets of a [`Batch`].
#[derive(Debug)]
pub struct Iter<'b> {
    inner: IterInner<'b>,
}

#[derive(Debug)]
enum IterInner<'b> {
    Owned(recv::OwnedIter<'b>),
    Block(mmap::BlockIter<'b>),
    Xdp(xdp::XdpIter<'b>),
    #[cfg(feature = "dpdk")]
    Dpdk(dpdk::DpdkIter<'b>),
}

impl<'b> Iterator for Iter<'b> {
    type Item = Packet<'b>;

    #[inline]
    fn next(&mut self) -> Option<Packet<'b>> {
        match &mut self.inner {
            IterInner::Owned(i) => i.next(),
            IterInner::Block(i) => i.next(),
            IterInner::Xdp(i) => i.next(),
            #[cfg(feature = "dpdk")]
            IterInner::Dpdk(i) => i.next(),
        }
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.inner {
            IterInner::Owned(i) => i.size_hint(),
            IterInner::Block(i) => i.size_hint(),
            IterInner::Xdp(i) => i.size_hint(),
            #[cfg(feature = "dpdk")]
            IterInner::Dpdk(i) => i.size_hint(),
        }
    }
}
