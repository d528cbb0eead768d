//! Receiving: a batch lends RX descriptors' frames in place from the UMEM and, when it drops,
//! gives the frames back through the fill ring.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::rings::RxRing;
use super::socket::XskFault;
use super::umem::Umem;
use super::XskSocket;
use crate::backend::RungBatch;
use crate::packet::{Packet, TimestampSource, PKT_TYPE_BY_MAC};
use crate::ring::xsk::{RingFault, RingIdx, Span};
use crate::sys::{self, xdp as x};
use crate::Result;

impl XskSocket {
    /// Waits up to `timeout` (`None`: forever) for packets and lends up to `batch_size` of them.
    ///
    /// An empty batch means the timeout passed or a signal arrived.
    ///
    /// # Errors
    /// [`Error::InterfaceGone`](crate::Error::InterfaceGone) if the device went away;
    /// [`Error::Syscall`](crate::Error::Syscall) for other `poll` failures;
    /// [`Error::KernelRing`](crate::Error::KernelRing) once a ring held an impossible value.
    #[inline]
    pub(crate) fn receive(&mut self, timeout: Option<Duration>) -> Result<XdpBatch<'_>> {
        self.check_fault()?;
        let mut span = self.peek_rx()?;
        if span.len == 0 && self.busy_poll {
            span = self.busy_wait(timeout)?;
        } else if span.len == 0 && timeout != Some(Duration::ZERO) {
            span = self.wait(timeout)?;
        }
        if let Some(c) = &mut self.coalesce {
            c.took(span.len, Instant::now);
        }
        let ts_ns = if span.len > 0 { sys::realtime_ns() } else { 0 };
        self.delivered += u64::from(span.len);
        Ok(XdpBatch {
            sock: self,
            span,
            ts_ns,
        })
    }

    /// Up to `batch_size` RX entries; an impossible producer index is a fault.
    #[inline]
    fn peek_rx(&mut self) -> Result<Span> {
        match self.rx.peek(self.batch_size) {
            Ok(span) => Ok(span),
            Err(f) => Err(self.fail("AF_XDP rx ring", f)),
        }
    }

    /// The RX ring is empty: nap if the socket was busy (see `coalesce.rs`), else (or if the
    /// nap brought nothing) sleep in `poll()` for what is left of `timeout`.
    fn wait(&mut self, timeout: Option<Duration>) -> Result<Span> {
        let mut left = timeout;
        if let Some(c) = &mut self.coalesce {
            let now = Instant::now();
            if let Some(nap) = c.empty(now, self.rx.size()) {
                let nap = left.map_or(nap, |t| nap.min(t));
                std::thread::sleep(nap);
                let span = self.peek_rx()?;
                if span.len > 0 {
                    return Ok(span);
                }
                left = left.map(|t| t.saturating_sub(now.elapsed()));
                if left == Some(Duration::ZERO) {
                    return Ok(span);
                }
            }
        }
        // Only zero-copy drivers set the fill ring's flag (and need the kick); poll() below
        // also wakes them.
        if self.zero_copy && self.need_wakeup && self.fill.needs_wakeup() {
            x::kick_rx(&self.fd)?;
        }
        sys::poll_readable(self.fd.as_raw_fd(), left)?;
        self.peek_rx()
    }

    /// Busy polling: `recvfrom(MSG_DONTWAIT)` runs the device's NAPI poll in this thread (see
    /// `busy_poll.rs`), then the RX ring is looked at again, until it has frames or `timeout`
    /// passed. Never sleeps.
    #[cold]
    fn busy_wait(&mut self, timeout: Option<Duration>) -> Result<Span> {
        let end = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            x::kick_rx(&self.fd)?;
            let span = self.peek_rx()?;
            if span.len > 0 || end.is_some_and(|e| std::time::Instant::now() >= e) {
                return Ok(span);
            }
        }
    }

    /// Whether the RX ring holds packets; wakes a driver that waits for the fill ring (so an
    /// event loop waiting on the descriptor is woken when packets come).
    pub(crate) fn ready(&mut self) -> Result<bool> {
        self.check_fault()?;
        if self.available_rx()? > 0 {
            return Ok(true);
        }
        if self.zero_copy && self.need_wakeup && self.fill.needs_wakeup() {
            x::kick_rx(&self.fd)?;
        }
        Ok(self.available_rx()? > 0)
    }

    /// How many RX entries are ready (at least 1 if any); an impossible producer index is a
    /// fault.
    fn available_rx(&mut self) -> Result<u32> {
        match self.rx.available(1) {
            Ok(n) => Ok(n),
            Err(f) => Err(self.fail("AF_XDP rx ring", f)),
        }
    }

    /// Hands `span`'s frames back to the kernel: fill ring first (the frames), then the RX
    /// entries. Called when a batch drops. A descriptor outside the socket's RX frames gives
    /// nothing back (the frame is not ours) and is a fault.
    fn recycle(&mut self, span: Span) {
        let back = match self.fill.reserve(span.len) {
            Ok(back) => back,
            Err(f) => {
                // The frames cannot go back; the RX entries are released all the same.
                self.fail("AF_XDP fill ring", f);
                Span {
                    start: span.start,
                    len: 0,
                }
            }
        };
        // Frames are conserved: a socket owns at most fill_size RX frames, so the fill ring
        // always has room for every frame we hold.
        debug_assert!(
            back.len == span.len || self.fault.get().is_some(),
            "fill ring has room for every owned frame"
        );
        let mut n = 0;
        for idx in span.iter() {
            let d = self.rx.read(idx);
            if rx_frame(
                d.addr,
                d.len,
                self.rx_base,
                self.rx_len,
                self.umem.frame_size,
            )
            .is_none()
            {
                self.rejected += 1;
                self.fail(
                    "AF_XDP rx ring",
                    RingFault {
                        why: "descriptor outside the socket's frames",
                        value: d.addr,
                    },
                );
                continue; // not one of our frames: nothing to give back
            }
            if n < back.len {
                self.fill.write(back.start.add(n), self.umem.base(d.addr));
                n += 1;
            }
        }
        self.fill.cancel(back.len - n);
        self.fill.submit(n);
        self.rx.release(span.len);
        // Copy mode: the kernel takes fill entries as it copies, never asks for a wake-up (and
        // the flag check costs a full fence).
        if self.zero_copy && self.need_wakeup && self.fill.needs_wakeup() {
            // Errors here are transient ("try later") or will show on the next receive.
            let _ = x::kick_rx(&self.fd);
        }
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

impl RungBatch for XdpBatch<'_> {
    type Iter<'b>
        = XdpIter<'b>
    where
        Self: 'b;

    /// RX descriptors in the batch. (A descriptor outside the socket's frames, which a correct
    /// kernel never produces, ends the iteration early; the next receive then fails.)
    #[inline]
    fn len(&self) -> usize {
        self.span.len as usize
    }

    /// The packets in arrival order.
    #[inline]
    fn iter(&self) -> XdpIter<'_> {
        XdpIter {
            rx: &self.sock.rx,
            umem: &self.sock.umem,
            next: self.span.start,
            left: self.span.len,
            ts_ns: self.ts_ns,
            ifindex: self.sock.ifindex,
            queue: self.sock.queue,
            snaplen: self.sock.snaplen,
            rx_base: self.sock.rx_base,
            rx_len: self.sock.rx_len,
            local_mac: self.sock.local_mac,
            fault: &self.sock.fault,
            rx_timestamps: self.sock.rx_timestamps,
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
    rx_base: u64,
    rx_len: u64,
    local_mac: [u8; 6],
    fault: &'b Cell<Option<XskFault>>,
    /// The program put each frame's receive timestamp in the 8 bytes before it.
    rx_timestamps: bool,
}

/// The UMEM offset of `[addr, addr + len)` if it lies inside one frame of the socket's RX
/// frames (`rx_base..rx_base + rx_len`, whole frames of `frame_size`, a power of two). The
/// per-descriptor check (STYLE §3): two compares and a mask.
#[inline]
fn rx_frame(addr: u64, len: u32, rx_base: u64, rx_len: u64, frame_size: u32) -> Option<usize> {
    let fs = u64::from(frame_size);
    if addr.wrapping_sub(rx_base) >= rx_len || (addr & (fs - 1)) + u64::from(len) > fs {
        return None;
    }
    Some(addr as usize)
}

impl<'b> Iterator for XdpIter<'b> {
    type Item = Packet<'b>;

    #[inline]
    fn next(&mut self) -> Option<Packet<'b>> {
        if self.left == 0 {
            return None;
        }
        let d = self.rx.read(self.next);
        self.next = self.next.add(1);
        self.left -= 1;
        let Some(off) = rx_frame(
            d.addr,
            d.len,
            self.rx_base,
            self.rx_len,
            self.umem.frame_size,
        ) else {
            self.refuse(d.addr);
            return None;
        };
        let cap = d.len.min(self.snaplen) as usize;
        // SAFETY: `rx_frame` proved [off, off + len) inside one of this socket's RX frames,
        // hence inside the UMEM mapping, and not a TX frame (which fastpath writes) nor
        // another socket's; the descriptor was peeked in `receive` ((C) made the kernel's frame
        // write visible) and its frame goes back to the fill ring only when the batch drops,
        // which cannot happen while this iterator (borrowing the batch for 'b) or a slice from
        // it lives.
        let data = unsafe { self.umem.slice(off, cap) };
        let (ts_ns, ts_source) = match self.rx_timestamps {
            true => self.meta_timestamp(off),
            false => (self.ts_ns, TimestampSource::Batch),
        };
        Some(Packet {
            data,
            orig_len: d.len,
            ts_ns,
            ifindex: self.ifindex,
            queue: Some(self.queue),
            ts_source,
            pkt_type: PKT_TYPE_BY_MAC,
            local_mac: self.local_mac,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left as usize))
    }
}

impl XdpIter<'_> {
    /// The driver's receive timestamp the program wrote in the metadata before the frame at
    /// `off`, or the batch time where it wrote 0 (the driver had none) or there is no room.
    #[inline]
    fn meta_timestamp(&self, off: usize) -> (u64, TimestampSource) {
        const META: usize = crate::unstable::xdp_prog::RX_TIMESTAMP_META_LEN;
        let frame_start = self.umem.base(off as u64) as usize;
        if off - frame_start >= META {
            // SAFETY: `off - META .. off` lies in the same UMEM frame as the packet (checked
            // just above; `off` passed `rx_frame`: one of this socket's RX frames), which we own
            // until the batch drops; the program
            // wrote the metadata there and the kernel copied it with the frame before
            // publishing the descriptor ((C) in `receive`).
            let meta = unsafe { self.umem.slice(off - META, META) };
            let ts = u64::from_ne_bytes(meta.try_into().expect("META bytes"));
            if ts != 0 {
                return (ts, TimestampSource::Hardware);
            }
        }
        (self.ts_ns, TimestampSource::Batch)
    }

    /// Ends the iteration on a descriptor outside the socket's frames and records the fault,
    /// so the next receive fails.
    #[cold]
    fn refuse(&mut self, addr: u64) {
        self.left = 0;
        if self.fault.get().is_none() {
            self.fault.set(Some(XskFault {
                ring: "AF_XDP rx ring",
                fault: RingFault {
                    why: "descriptor outside the socket's frames",
                    value: addr,
                },
            }));
        }
    }
}

impl<'b> IntoIterator for &'b XdpBatch<'_> {
    type Item = Packet<'b>;
    type IntoIter = XdpIter<'b>;

    fn into_iter(self) -> XdpIter<'b> {
        self.iter()
    }
}
