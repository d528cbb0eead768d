//! The rungs, each behind one crate-private contract: [`Rung`] for the handle, [`RungBatch`] for
//! what one receive lends.
//!
//! | rung | module | [`Rung`] type | [`RungBatch`] type |
//! |---|---|---|---|
//! | `recv`, `recv-batch` | [`recv`] | [`RecvSocket`](recv::RecvSocket) | [`OwnedBatch`](recv::OwnedBatch) |
//! | `mmap` | [`mmap`] | [`MmapSocket`](mmap::MmapSocket) | [`BlockBatch`](mmap::BlockBatch) |
//! | `xdp` | [`xdp`] | [`XdpQueue`](xdp::XdpQueue) | [`XdpBatch`](xdp::XdpBatch) |
//! | `dpdk` | [`dpdk`] | [`DpdkQueue`](dpdk::DpdkQueue) | [`DpdkBatch`](dpdk::DpdkBatch) |
//!
//! Each rung module also has an `open` that takes a validated [`Config`](crate::Config) and
//! returns rung values (one, or one per queue); [`crate::receiver`] wraps them in `Receiver`s and
//! is the one place that dispatches over the rungs (a `match` once per call, never `dyn`; a
//! batch iterator matches on a discriminant that does not change within the batch, which the
//! branch predictor makes free). [`afpacket`] holds the AF_PACKET setup that `recv` and `mmap`
//! share.
//!
//! Built without the `dpdk` feature, `dpdk` is `dpdk/stub.rs`: the same items, uninhabited
//! types, and an `open` that returns [`Error::Unsupported`], so every `match` has the same arms
//! in both builds.

pub(crate) mod afpacket;
#[cfg_attr(not(feature = "dpdk"), path = "dpdk/stub.rs")]
pub(crate) mod dpdk;
pub(crate) mod mmap;
pub(crate) mod recv;
pub(crate) mod xdp;

use std::os::fd::BorrowedFd;
use std::time::Duration;

use crate::bpf::Mode;
use crate::config::Backend;
use crate::packet::{Capabilities, Packet, Stats};
use crate::{Error, Result};

/// What every rung's handle provides.
pub(crate) trait Rung {
    /// Packets lent by one [`receive`](Rung::receive); dropping it hands the frames back.
    type Batch<'a>: RungBatch
    where
        Self: 'a;

    /// Whether [`receive`](Rung::receive) names its link errors itself. When false, the
    /// receiver maps `InterfaceGone`/`InterfaceDown` to whichever holds for the interface now
    /// (the socket only knows "down" or "gone").
    const NAMES_LINK_ERRORS: bool = false;

    /// The backend this handle is (`recv` and `recv-batch` share one rung).
    fn backend(&self) -> Backend;

    /// The interface index packets carry (the port id for `dpdk`).
    fn ifindex(&self) -> u32;

    /// Waits at most `timeout` (`None`: forever) for packets and lends them as one batch; an
    /// empty batch means "nothing yet" (timeout or signal). Returning frames to the kernel
    /// happens when the batch is dropped.
    fn receive(&mut self, timeout: Option<Duration>) -> Result<Self::Batch<'_>>;

    /// Exact counters accumulated since the handle opened.
    fn stats(&mut self) -> Result<Stats>;

    /// Stops the kernel from queuing (or counting) new packets for this handle; what is queued
    /// stays readable. Returns how long the kernel may still take to hand over what it holds.
    fn stop_intake(&mut self) -> Result<Duration>;

    /// What this handle can do.
    fn capabilities(&self) -> Capabilities;

    /// The descriptor to wait on.
    fn fd(&self) -> BorrowedFd<'_>;

    /// The descriptor that becomes readable when packets arrive, for event loops (epoll,
    /// tokio); `None` for rungs that poll the device and have no such descriptor (`dpdk`).
    fn wait_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.fd())
    }

    /// Whether a receive with a zero timeout would lend packets now (without taking them).
    /// The default asks `poll(2)` with a zero timeout; ring rungs look at the ring.
    fn ready(&mut self) -> Result<bool> {
        crate::sys::poll_readable(
            std::os::fd::AsRawFd::as_raw_fd(&self.fd()),
            Some(Duration::ZERO),
        )
    }

    /// The receive queue the handle is bound to, where it binds to one.
    fn queue(&self) -> Option<u32> {
        None
    }

    /// Where the XDP program runs, for rungs that attach one.
    fn xdp_mode(&self) -> Option<Mode> {
        None
    }

    /// The `PACKET_FANOUT` group the socket joined, if any.
    fn fanout_group(&self) -> Option<u16> {
        None
    }

    /// Queues `frames` for transmission; returns how many were queued.
    fn send(&mut self, frames: &[&[u8]]) -> Result<usize> {
        let _ = frames;
        Err(no_tx(self.backend()))
    }

    /// Pushes queued frames out; returns how many are still in flight.
    fn flush(&mut self) -> Result<u32> {
        Err(no_tx(self.backend()))
    }
}

/// What one receive lends: a count and an iterator over borrowed packets.
pub(crate) trait RungBatch {
    /// The iterator over the packets of the batch, in arrival order.
    type Iter<'b>: Iterator<Item = Packet<'b>>
    where
        Self: 'b;

    /// Packets in the batch.
    fn len(&self) -> usize;

    /// Iterates over the packets in arrival order.
    fn iter(&self) -> Self::Iter<'_>;
}

/// The error of [`Rung::send`] and [`Rung::flush`] on a rung without TX.
fn no_tx(backend: Backend) -> Error {
    Error::Unsupported {
        backend: backend.name(),
        why: "this backend only receives".into(),
        fix: "transmit with -b xdp (AF_XDP TX ring)",
    }
}
