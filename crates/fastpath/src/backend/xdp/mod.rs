//! Rung 4: AF_XDP. An XDP program redirects each RX queue's frames into an AF_XDP socket; the
//! kernel writes them into a UMEM (memory we own, shared with the kernel) and hands them over
//! through the RX ring. A batch lends the frames in place and gives them back through the fill
//! ring when it drops.
//!
//! Pieces, outermost first:
//! - [`open`] (here): the checks before anything is attached (interface up, IP addresses), then
//!   an [`XdpPort`] split into one [`XdpQueue`] (the [`Rung`]) per queue.
//! - `port.rs`, [`XdpPort`]: the XSKMAP, the redirect program, its attachment (detached on drop,
//!   [`PortGuard`]) and one [`XskSocket`] per queue, all sharing one UMEM (`XDP_SHARED_UMEM`),
//!   frames partitioned between them; each socket has its own fill and completion rings
//!   (kernel ≥ 5.10). `queues.rs` checks the queue list against the interface.
//! - `socket.rs`, [`XskSocket`]: opening one socket over a slice of the UMEM (`umem.rs`), with
//!   its four rings (`rings.rs`) and busy polling (`busy_poll.rs`); its counters.
//! - `batch.rs`: `receive`, [`XdpBatch`], [`XdpIter`]; `tx.rs`: `send`, `flush`.
//!
//! Mode: zero-copy where the driver supports it ([`ZeroCopy::Auto`](crate::ZeroCopy::Auto)
//! tries it first), copy mode otherwise (veth: the kernel copies each frame into the UMEM, still
//! no copy to user space). Which one is active is read back from the kernel (`XDP_OPTIONS`),
//! never assumed.
//!
//! Timestamps: AF_XDP has none; every packet of a batch carries the `CLOCK_REALTIME` taken once
//! when the batch was formed. With [`TimestampType::Adapter`](crate::TimestampType::Adapter)
//! (native mode) the program asks the driver for each frame's receive time (kfunc
//! `bpf_xdp_metadata_rx_timestamp`) and puts it in 8 bytes of XDP metadata before the frame;
//! packets whose driver gave one carry it ([`TimestampSource::Hardware`](crate::TimestampSource)),
//! the others the batch time.

mod batch;
mod busy_poll;
mod coalesce;
mod port;
mod queues;
mod rings;
mod socket;
mod tx;
mod umem;

#[cfg(test)]
mod root_tests;
#[cfg(test)]
mod tests;

use std::os::fd::BorrowedFd;
use std::sync::Arc;
use std::time::Duration;

use super::Rung;
use crate::bpf::Mode;
use crate::config::{Backend, Config};
use crate::packet::{Capabilities, Stats};
use crate::{sys, Error, Result};

pub(crate) use batch::{XdpBatch, XdpIter};
pub(crate) use port::{PortGuard, XdpPort};
pub(crate) use queues::rx_queue_count;
pub(crate) use socket::XskSocket;

/// Opens one handle per queue of `cfg.interface()`, all on one [`XdpPort`] (one UMEM, one
/// program, attached with `cfg.xdp.mode`, detached when the last handle drops).
///
/// Refuses an interface with IP addresses unless `cfg` confirms with `take`, with or without a
/// filter: the frames a filter accepts are taken from the kernel stack too (`tcp` takes SSH).
pub(crate) fn open(cfg: &Config, queues: &[u32]) -> Result<Vec<XdpQueue>> {
    cfg.validate()?;
    if cfg.timestamps == crate::config::TimestampType::Adapter && cfg.xdp.mode != Mode::Native {
        return Err(Error::Unsupported {
            backend: "xdp",
            why: "receive timestamps come from the driver's XDP metadata, which only a program \
                  in native mode can read"
                .into(),
            fix: "capture with --xdp-mode native, or with -j host (a stamp per batch)",
        });
    }
    let ifindex = sys::ifindex(&cfg.interface)?;
    let probe = sys::packet_socket();
    if let Ok(fd) = &probe {
        sys::ensure_up(fd, &cfg.interface)?;
    }
    if !cfg.take {
        let addrs = sys::interface_addresses(&cfg.interface)?;
        if !addrs.is_empty() {
            return Err(Error::WouldTakeTraffic {
                name: cfg.interface.clone(),
                addrs: addrs.join(", "),
                filter: cfg.filter.as_ref().map(|f| {
                    f.source()
                        .map_or_else(|| "(a BPF program)".to_owned(), str::to_owned)
                }),
            });
        }
    }
    Ok(XdpPort::open_config(cfg, ifindex, queues)?.into_queues())
}

/// One queue's socket plus a share of its port's program: what a [`Receiver`](crate::Receiver)
/// owns. Field order is drop order: the port's reference goes first, so the last handle of a port
/// detaches the program before its socket closes.
#[derive(Debug)]
pub(crate) struct XdpQueue {
    port: Arc<PortGuard>,
    sock: XskSocket,
}

impl Rung for XdpQueue {
    type Batch<'a> = XdpBatch<'a>;

    fn backend(&self) -> Backend {
        Backend::Xdp
    }

    fn ifindex(&self) -> u32 {
        self.sock.ifindex
    }

    #[inline]
    fn receive(&mut self, timeout: Option<Duration>) -> Result<XdpBatch<'_>> {
        self.sock.receive(timeout)
    }

    fn stats(&mut self) -> Result<Stats> {
        self.sock.stats().map(Stats::from)
    }

    fn stop_intake(&mut self) -> Result<Duration> {
        // Frames of this queue go on to the kernel stack from now on (the program's
        // redirect falls back to XDP_PASS for an empty slot). Frames already redirected are
        // on the RX ring by the end of the driver's current poll.
        self.port.map().remove(self.sock.queue())?;
        Ok(Duration::from_millis(10))
    }

    fn capabilities(&self) -> Capabilities {
        self.sock.capabilities()
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.sock.fd()
    }

    fn ready(&mut self) -> Result<bool> {
        self.sock.ready()
    }

    fn queue(&self) -> Option<u32> {
        Some(self.sock.queue())
    }

    fn xdp_mode(&self) -> Option<Mode> {
        Some(self.port.attachment().mode())
    }

    fn send(&mut self, frames: &[&[u8]]) -> Result<usize> {
        self.sock.send(frames)
    }

    fn flush(&mut self) -> Result<u32> {
        self.sock.flush()
    }
}
