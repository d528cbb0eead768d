//! Transmitting: frames are copied into free TX frames of the socket's UMEM share, queued on
//! the TX ring, and reaped from the completion ring back into the free pool.
#![allow(unsafe_code)]

use super::XskSocket;
use crate::sys::xdp::{self as x, xdp_desc};
use crate::{Error, Result};

impl XskSocket {
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
        let Some(tx) = self.tx.as_mut() else {
            return Err(no_tx_ring());
        };
        let want = frames.len().min(self.tx_free.len()) as u32;
        let span = tx.reserve(want);
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
            tx.write(
                idx,
                xdp_desc {
                    addr,
                    len: f.len() as u32,
                    options: 0,
                },
            );
        }
        // (B) in `submit` orders the frame copies above before the kernel sees the descriptors.
        tx.submit(span.len);
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
}

/// `send` on a socket opened without a TX ring.
fn no_tx_ring() -> Error {
    Error::Unsupported {
        backend: "xdp",
        why: "this receiver was opened without an AF_XDP TX ring (XdpConfig::tx_size is 0)".into(),
        fix: "set XdpConfig::tx_size (a power of two, e.g. 2048) to transmit",
    }
}
