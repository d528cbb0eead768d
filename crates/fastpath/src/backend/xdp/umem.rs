//! The UMEM: the memory the kernel writes received frames into and reads TX frames from, its
//! registration (`XDP_UMEM_REG`), and how its frames are split between the sockets of a port.
#![allow(unsafe_code)]

use std::fmt;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use crate::config::XdpConfig;
use crate::sys::xdp::{self as x, xdp_umem_reg};
use crate::sys::{self, Mmap};
use crate::{Error, Result};

/// The UMEM: `frame_count × frame_size` bytes of anonymous memory registered with the kernel.
///
/// Frames are owned by exactly one party at a time: the kernel (on the fill or TX ring, or
/// being written), or one socket's user side (free TX pool, lent in a batch). Rings hand them
/// over with the Release/Acquire edges documented in `ring/xsk.rs`.
pub(super) struct Umem {
    pub(super) map: Mmap,
    pub(super) frame_size: u32,
    pub(super) huge: bool,
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
    pub(super) fn check(&self, addr: u64, len: u32) -> Option<usize> {
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
    pub(super) fn base(&self, addr: u64) -> u64 {
        addr & !u64::from(self.frame_size - 1)
    }

    /// Lends `len` bytes at offset `off`.
    ///
    /// # Safety
    /// `off..off + len` passed [`Umem::check`], and the caller owns the frame (acquired from the
    /// RX ring, not yet returned to the fill ring) for as long as the returned borrow lives;
    /// nobody writes it meanwhile.
    #[inline]
    pub(super) unsafe fn slice(&self, off: usize, len: usize) -> &[u8] {
        // SAFETY: in bounds (checked by the caller through `check`), initialised (the mapping is
        // zero-filled at creation and the kernel wrote the packet before publishing it), and not
        // written while the borrow lives (caller's ownership contract).
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().wrapping_add(off), len) }
    }
}

/// Frames of the UMEM given to one socket: `rx` go on its fill ring, `tx` to its free pool.
#[derive(Debug, Clone, Copy)]
pub(super) struct Share {
    pub(super) first: u32,
    pub(super) rx: u32,
    pub(super) tx: u32,
}

/// Maps the UMEM of `cfg` (`frame_count × frame_size` bytes; `cfg` validated).
///
/// # Errors
/// [`Error::OutOfMemory`] when the memory cannot be mapped.
pub(super) fn alloc_umem(cfg: &XdpConfig) -> Result<Arc<Umem>> {
    let len = (cfg.frame_count as usize)
        .checked_mul(cfg.frame_size as usize)
        .ok_or_else(|| Error::InvalidConfig {
            field: "frame_count",
            why: "frame_count x frame_size overflows; use fewer or smaller frames".into(),
        })?;
    let (map, huge) = x::umem_alloc(len)?;
    Ok(Arc::new(Umem {
        map,
        frame_size: cfg.frame_size,
        huge,
    }))
}

/// `setsockopt(XDP_UMEM_REG)`, naming the memory limit when the kernel refuses to pin it.
pub(super) fn register_umem(fd: &OwnedFd, umem: &Umem) -> Result<()> {
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
