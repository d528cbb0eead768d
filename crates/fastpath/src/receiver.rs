//! The receive handle: [`Receiver`], the [`Batch`]es it lends and their [`Iter`]ator, and the
//! functions that open several handles at once ([`open_fanout`], [`open_queues`]).
//!
//! This is the one place that dispatches over the rungs: [`Receiver`] holds one rung value
//! (a `backend::Rung`) in an enum and `match`es once per call (the `dispatch!` macro writes the
//! arms), never per packet through `dyn`. A batch iterator matches on a discriminant
//! that does not change within the batch, which the branch predictor makes free.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use crate::backend::dpdk::{self, DpdkBatch, DpdkIter, DpdkQueue};
use crate::backend::mmap::{BlockBatch, BlockIter, MmapSocket};
use crate::backend::recv::{OwnedBatch, OwnedIter, RecvSocket};
use crate::backend::xdp::{self, XdpBatch, XdpIter, XdpQueue};
use crate::backend::{Rung, RungBatch};
use crate::config::{Backend, Config, FanoutMode};
use crate::packet::{Capabilities, Packet, Stats};
use crate::{sys, Error, Result};

/// Expands to a `match` on `$value`, an enum with one variant per rung (`$enum` is `Inner`,
/// `BatchInner` or `IterInner`), that evaluates `$body` with `$r` bound to the variant's
/// value. The one list of rungs the dispatch follows.
macro_rules! dispatch {
    ($enum:ident, $value:expr, $r:ident => $body:expr) => {
        match $value {
            $enum::Recv($r) => $body,
            $enum::Mmap($r) => $body,
            $enum::Xdp($r) => $body,
            $enum::Dpdk($r) => $body,
        }
    };
}

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

/// One rung's handle.
// The xdp variant is the largest (its ring views and the bounds its checks need); a handle is
// made once, and boxing it would add a pointer chase to every receive.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Inner {
    Recv(RecvSocket),
    Mmap(MmapSocket),
    Xdp(XdpQueue),
    Dpdk(DpdkQueue),
}

impl Receiver {
    /// Wraps an opened rung, opened for `cfg.interface()`.
    fn new(inner: Inner, cfg: &Config) -> Receiver {
        let (backend, ifindex) = dispatch!(Inner, &inner, r => (r.backend(), r.ifindex()));
        Receiver {
            inner,
            backend,
            interface: cfg.interface.clone(),
            ifindex,
        }
    }

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
        let inner = match cfg.backend {
            Backend::Recv | Backend::RecvBatch => Inner::Recv(RecvSocket::open(cfg)?),
            Backend::Mmap => Inner::Mmap(MmapSocket::open(cfg)?),
            Backend::Xdp | Backend::Dpdk => {
                let mut all = open_queues(cfg, &[cfg.queue])?;
                return Ok(all.pop().expect("one receiver per queue asked for"));
            }
        };
        Ok(Receiver::new(inner, cfg))
    }

    /// Waits up to `timeout` (`None`: forever) for packets and lends them as a batch.
    ///
    /// An empty batch means the timeout passed or a signal arrived; check your stop condition
    /// and call again. The packets borrow the handle: drop the batch (or call
    /// [`Batch::release`]) to hand the frames back before the next call.
    ///
    /// # Errors
    /// [`Error::InterfaceGone`] if the interface disappeared; [`Error::KernelRing`] once a ring
    /// shared with the kernel held an impossible value (the handle is unusable from then on);
    /// [`Error::Syscall`] otherwise.
    #[inline]
    pub fn recv(&mut self, timeout: Option<Duration>) -> Result<Batch<'_>> {
        let link = (self.interface.as_str(), self.ifindex);
        dispatch!(Inner, &mut self.inner, r => receive(r, timeout, link))
    }

    /// Exact counters since the handle was opened.
    ///
    /// # Errors
    /// [`Error::Syscall`] if the kernel refuses `PACKET_STATISTICS` (it does not in practice).
    pub fn stats(&mut self) -> Result<Stats> {
        dispatch!(Inner, &mut self.inner, r => r.stats())
    }

    /// Stops intake: from now on the kernel queues no new packet for this handle, and its
    /// counters stop growing; packets already queued stay readable with [`Receiver::recv`].
    /// Use it to end a capture with counts that add up: stop intake, read until the queue is
    /// empty, then [`Receiver::stats`] gives `delivered + dropped == received` exactly, however
    /// busy the interface is.
    ///
    /// Returns how long the kernel may still take to hand over what it holds: after a `recv`
    /// waiting at least that long returns an empty batch, nothing is left. (`mmap`: twice the
    /// block timeout plus 30 ms, since the kernel's retire timer hands over a partly filled
    /// block within two of its periods; `xdp`: a moment for the driver's current poll; `recv`,
    /// `recv-batch`: zero.)
    ///
    /// How: the AF_PACKET rungs replace their socket filter with one that rejects every packet
    /// (the kernel counts only packets a filter passed); `xdp` empties its queue's slot in the
    /// XSKMAP, so that queue's frames go on to the kernel stack; `dpdk` cannot stop a device
    /// queue and returns at once (a drain then reads what keeps arriving, so bound it). There is
    /// no way back: open a new handle to receive again.
    ///
    /// # Errors
    /// [`Error::Syscall`] if the kernel refuses the filter or the map update.
    pub fn stop_intake(&mut self) -> Result<Duration> {
        dispatch!(Inner, &mut self.inner, r => r.stop_intake())
    }

    /// What this handle can do.
    pub fn capabilities(&self) -> Capabilities {
        dispatch!(Inner, &self.inner, r => r.capabilities())
    }

    /// The receive queue this handle is bound to, where the backend binds to one (`xdp`,
    /// `dpdk`).
    pub fn queue(&self) -> Option<u32> {
        dispatch!(Inner, &self.inner, r => r.queue())
    }

    /// Whether the XDP program runs in the driver (native) or generic mode (`xdp` only).
    pub fn xdp_mode(&self) -> Option<crate::bpf::Mode> {
        dispatch!(Inner, &self.inner, r => r.xdp_mode())
    }

    /// Queues `frames` for transmission on the handle's interface and queue; returns how many
    /// were queued (fewer when the TX ring or its frames are exhausted: call
    /// [`Receiver::flush`] and retry). Frames are copied into the backend's own memory.
    ///
    /// # Errors
    /// [`Error::Unsupported`] on backends without TX (see [`Capabilities::tx`]);
    /// [`Error::InvalidConfig`] for an empty or oversized frame.
    pub fn send(&mut self, frames: &[&[u8]]) -> Result<usize> {
        dispatch!(Inner, &mut self.inner, r => r.send(frames))
    }

    /// Pushes queued frames to the device and reaps completions; returns how many frames are
    /// still in flight (0: all sent).
    ///
    /// # Errors
    /// As [`Receiver::send`].
    pub fn flush(&mut self) -> Result<u32> {
        dispatch!(Inner, &mut self.inner, r => r.flush())
    }

    /// The descriptor that becomes readable when packets arrive, to wait for them in an event
    /// loop (epoll, tokio: see `AsyncReceiver` with the `tokio` feature). `None` for `dpdk`,
    /// whose poll-mode driver has no such descriptor: drive it from a thread of its own.
    pub fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
        dispatch!(Inner, &self.inner, r => r.wait_fd())
    }

    /// Whether [`Receiver::recv`] with a zero timeout would lend packets now (nothing is taken).
    ///
    /// # Errors
    /// As [`Receiver::recv`].
    pub fn is_ready(&mut self) -> Result<bool> {
        dispatch!(Inner, &mut self.inner, r => r.ready())
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

    /// The fanout group this socket joined, if [`Config::fanout`] was set. (AF_XDP queues and
    /// DPDK spread packets without a `PACKET_FANOUT` group.)
    pub fn fanout_group(&self) -> Option<u16> {
        dispatch!(Inner, &self.inner, r => r.fanout_group())
    }
}

/// One rung's receive, lent as a [`Batch`]. Unless the rung names its link errors itself, the
/// socket only knows "down" (`ENETDOWN`) or "gone" (`ENODEV`); removing an interface takes it
/// down first, so the kernel is asked which one holds now.
#[inline]
fn receive<'a, R: Rung>(
    r: &'a mut R,
    timeout: Option<Duration>,
    (interface, ifindex): (&str, u32),
) -> Result<Batch<'a>>
where
    BatchInner<'a>: From<R::Batch<'a>>,
{
    match r.receive(timeout) {
        Ok(b) => Ok(Batch { inner: b.into() }),
        Err(e) if R::NAMES_LINK_ERRORS => Err(e),
        Err(Error::InterfaceGone { .. } | Error::InterfaceDown { .. }) => {
            let name = interface.to_owned();
            Err(match sys::ifindex(&name) {
                Ok(i) if i == ifindex => Error::InterfaceDown { name },
                _ => Error::InterfaceGone { name },
            })
        }
        Err(e) => Err(e),
    }
}

impl AsFd for Receiver {
    fn as_fd(&self) -> BorrowedFd<'_> {
        dispatch!(Inner, &self.inner, r => r.fd())
    }
}

impl AsRawFd for Receiver {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

/// Opens one [`Backend::Xdp`] handle per queue of `cfg.interface()`, all sharing one UMEM and one
/// XDP program (attached with `cfg`'s mode; detached when the last handle drops). Drive each
/// handle from its own thread. With [`Backend::Dpdk`], one handle per queue of the DPDK device.
///
/// # Errors
/// As [`Receiver::open`]; [`Error::InvalidConfig`] for an empty or duplicate queue list or a
/// queue the interface does not have; [`Error::WouldTakeTraffic`] when the interface has IP
/// addresses and [`Config::take`] was not given; [`Error::XdpAlreadyAttached`] when another
/// program is attached; [`Error::Unsupported`] without AF_XDP or native XDP support.
pub fn open_queues(cfg: &Config, queues: &[u32]) -> Result<Vec<Receiver>> {
    Ok(match cfg.backend {
        Backend::Dpdk => wrap(dpdk::open(cfg, queues)?, Inner::Dpdk, cfg),
        _ => wrap(xdp::open(cfg, queues)?, Inner::Xdp, cfg),
    })
}

/// Wraps each rung value of `all` in a [`Receiver`].
fn wrap<R>(all: Vec<R>, variant: fn(R) -> Inner, cfg: &Config) -> Vec<Receiver> {
    all.into_iter()
        .map(|r| Receiver::new(variant(r), cfg))
        .collect()
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
pub fn open_fanout(cfg: &Config, n: usize, mode: FanoutMode) -> Result<Vec<Receiver>> {
    if n == 0 || n > 64 {
        return Err(Error::InvalidConfig {
            field: "threads",
            why: format!("{n} is out of range (1 to 64)"),
        });
    }
    // DPDK spreads flows over queues with RSS instead of a fanout group.
    if cfg.backend == Backend::Dpdk {
        let queues: Vec<u32> = (0..n as u32).collect();
        return Ok(wrap(dpdk::open(cfg, &queues)?, Inner::Dpdk, cfg));
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

/// One rung's batch.
#[derive(Debug)]
enum BatchInner<'a> {
    Recv(OwnedBatch<'a>),
    Mmap(BlockBatch<'a>),
    Xdp(XdpBatch<'a>),
    Dpdk(DpdkBatch<'a>),
}

impl<'a> Batch<'a> {
    /// Number of packets in the batch.
    #[inline]
    pub fn len(&self) -> usize {
        dispatch!(BatchInner, &self.inner, b => b.len())
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
            inner: dispatch!(BatchInner, &self.inner, b => b.iter().into()),
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

/// One rung's batch iterator.
#[derive(Debug)]
enum IterInner<'b> {
    Recv(OwnedIter<'b>),
    Mmap(BlockIter<'b>),
    Xdp(XdpIter<'b>),
    Dpdk(DpdkIter<'b>),
}

impl<'b> Iterator for Iter<'b> {
    type Item = Packet<'b>;

    #[inline]
    fn next(&mut self) -> Option<Packet<'b>> {
        dispatch!(IterInner, &mut self.inner, i => i.next())
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        dispatch!(IterInner, &self.inner, i => i.size_hint())
    }
}

/// `From` each rung's batch and iterator into the variant that holds it.
macro_rules! variant_from {
    ($($v:ident($batch:ident, $iter:ident)),* $(,)?) => {$(
        impl<'a> From<$batch<'a>> for BatchInner<'a> {
            #[inline]
            fn from(b: $batch<'a>) -> Self {
                BatchInner::$v(b)
            }
        }

        impl<'b> From<$iter<'b>> for IterInner<'b> {
            #[inline]
            fn from(i: $iter<'b>) -> Self {
                IterInner::$v(i)
            }
        }
    )*};
}

variant_from!(
    Recv(OwnedBatch, OwnedIter),
    Mmap(BlockBatch, BlockIter),
    Xdp(XdpBatch, XdpIter),
    Dpdk(DpdkBatch, DpdkIter),
);
