//! Transmitting: frames are copied into free TX frames of the socket's UMEM share, queued on
//! the TX ring, and reaped from the completion ring back into the free pool.
#![allow(unsafe_code)]

use super::XskSocket;
use crate::ring::xsk::RingFault;
use crate::sys::xdp::{self as x, xdp_desc};
use crate::{Error, Result};

impl XskSocket {
    /// Copies frames into free TX frames and queues them; returns how many were queued (fewer
    /// than `frames.len()` when TX frames or ring slots run out: call again, or
    /// [`flush`](Self::flush)).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an empty frame or one larger than a UMEM frame (nothing is
    /// queued then); [`Error::InterfaceGone`]; [`Error::Syscall`] if the kick fails;
    /// [`Error::KernelRing`] once a ring held an impossible value.
    pub(crate) fn send(&mut self, frames: &[&[u8]]) -> Result<usize> {
        self.check_fault()?;
        let max = self.umem.frame_size as usize;
        if let Some(f) = frames.iter().find(|f| f.is_empty() || f.len() > max) {
            return Err(Error::InvalidConfig {
                field: "frame",
                why: format!("a {}-byte frame cannot be sent (1 to {max} bytes)", f.len()),
            });
        }
        self.reap()?;
        let want = frames.len().min(self.tx_free.len()) as u32;
        let Some(tx) = self.tx.as_mut() else {
            return Err(no_tx_ring());
        };
        let span = match tx.reserve(want) {
            Ok(span) => span,
            Err(f) => return Err(self.fail("AF_XDP tx ring", f)),
        };
        for (idx, f) in span.iter().zip(frames) {
            let addr = self
                .tx_free
                .pop()
                .expect("reserved at most tx_free.len() slots");
            let off = self
                .umem
                .check(addr, f.len() as u32)
                .expect("free TX frames are frame-aligned offsets inside the UMEM");
            self.hold(addr);
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
            self.tx
                .as_mut()
                .expect("the TX ring exists (checked above)")
                .write(
                    idx,
                    xdp_desc {
                        addr,
                        len: f.len() as u32,
                        options: 0,
                    },
                );
        }
        // (B) in `submit` orders the frame copies above before the kernel sees the descriptors.
        self.tx
            .as_mut()
            .expect("the TX ring exists (checked above)")
            .submit(span.len);
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
        self.check_fault()?;
        self.reap()?;
        if self.tx_outstanding > 0 {
            self.kick_tx()?;
            self.reap()?;
        }
        Ok(self.tx_outstanding)
    }

    fn kick_tx(&mut self) -> Result<()> {
        let Some(tx) = &self.tx else {
            return Err(no_tx_ring());
        };
        // Without need_wakeup the kernel never looks at the TX ring by itself in copy mode.
        if !self.need_wakeup || tx.needs_wakeup() {
            x::kick_tx(&self.fd)?;
        }
        Ok(())
    }

    /// Whether the socket can transmit (it has a TX ring).
    pub(crate) fn can_send(&self) -> bool {
        self.tx.is_some()
    }

    /// Moves completed TX frames back to the free pool.
    ///
    /// Each completion must name a frame of this socket's TX share that the kernel holds (sent,
    /// not yet completed): anything else (outside the share, not a frame start, completed twice)
    /// is a fault, and the frame is not freed, so no frame is ever written while the kernel
    /// may still read it.
    fn reap(&mut self) -> Result<()> {
        let span = match self.comp.peek(self.comp.size()) {
            Ok(span) => span,
            Err(f) => return Err(self.fail("AF_XDP completion ring", f)),
        };
        let mut bad = None;
        for idx in span.iter() {
            let addr = self.comp.read(idx);
            if !self.release_held(addr) {
                bad.get_or_insert(addr);
                continue;
            }
            if self.tx_free.len() < self.tx_free.capacity() {
                self.tx_free.push(addr);
            }
        }
        self.comp.release(span.len);
        self.tx_outstanding -= span.len.min(self.tx_outstanding);
        match bad {
            None => Ok(()),
            Some(addr) => Err(self.fail(
                "AF_XDP completion ring",
                RingFault {
                    why: "completion of a frame the kernel was not sending",
                    value: addr,
                },
            )),
        }
    }

    /// The bit of TX frame `addr` in `tx_held`, if `addr` starts a frame of the TX share.
    fn tx_bit(&self, addr: u64) -> Option<(usize, u64)> {
        let rel = addr.wrapping_sub(self.tx_base);
        let fs = u64::from(self.umem.frame_size);
        if rel >= self.tx_len || rel % fs != 0 {
            return None;
        }
        let i = (rel / fs) as usize;
        Some((i / 64, 1 << (i % 64)))
    }

    /// Marks TX frame `addr` (from the free pool) as held by the kernel.
    fn hold(&mut self, addr: u64) {
        let (w, bit) = self
            .tx_bit(addr)
            .expect("free TX frames start frames of the TX share");
        self.tx_held[w] |= bit;
    }

    /// Clears TX frame `addr`'s held bit; false if it is not a held frame of the TX share.
    fn release_held(&mut self, addr: u64) -> bool {
        match self.tx_bit(addr) {
            Some((w, bit)) if self.tx_held[w] & bit != 0 => {
                self.tx_held[w] &= !bit;
                true
            }
            _ => false,
        }
    }
}

/// `send` on a socket opened without a TX ring.
fn no_tx_ring() -> Error {
    Error::Unsupported {
        backend: "xdp",
        why: "this receiver was opened without an AF_XDP TX ring (XdpConfig::tx_size is 0)".into(),
        fix: "set XdpConfig::tx_size (a power of two, e.g. 2048) to transmit",
    }
}
