//! The TPACKET_V3 block ring: a sequence of blocks whose ownership word passes between the
//! kernel and user space.
//!
//! ```text
//! kernel (tpacket_rcv / prb_close_block)      user space (BlockRing)
//!   write packets into block b                  LOAD.acq  block_status(b)  (C)
//!   smp_wmb(); STORE status = USER  (B)          read packets of b
//!                                               STORE.rel block_status(b) = KERNEL  (D)
//!   reads status == KERNEL before reuse (A)
//! (B) pairs with (C): the Acquire makes the packet bytes the kernel wrote before flipping the
//! status visible to us. (D) pairs with (A): the kernel sees all our reads (and the in-place
//! VLAN fix-ups we write) of block b as done before it reuses the block.
//! ```
//! libpcap's `packet_mmap_v3_acquire`/`_release` (pcap-linux.c) use the same pairing.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use crate::sys::packet::{tpacket_block_desc, TP_STATUS_KERNEL, TP_STATUS_USER};
use crate::sys::Mmap;

/// Offset of `bh1.block_status` inside `struct tpacket_block_desc` (after `version` and
/// `offset_to_priv`).
const STATUS_OFFSET: usize = std::mem::offset_of!(tpacket_block_desc, bh1);

/// A block index (`0..count`), kept apart from byte offsets by type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockIdx(pub(crate) u32);

/// The ring of `count` blocks of `block_size` bytes, with its mapping.
#[derive(Debug)]
pub(crate) struct BlockRing {
    map: Mmap,
    block_size: usize,
    /// `count - 1`; `count` is a power of two (checked in `new`).
    mask: u32,
}

impl BlockRing {
    /// Wraps the mapping of a `PACKET_RX_RING` set up with `count` blocks of `block_size` bytes.
    ///
    /// # Safety
    /// `map` must be the mapping of a TPACKET_V3 RX ring whose request had exactly these
    /// `block_size` and `count`; the kernel then may write any block it owns at any time, and
    /// this ring never creates references into a block it does not own.
    pub(crate) unsafe fn new(map: Mmap, block_size: usize, count: u32) -> Self {
        assert!(
            count.is_power_of_two(),
            "block count checked by Config::validate"
        );
        assert!(
            map.len() >= block_size * count as usize,
            "mapping covers the whole ring"
        );
        assert!(block_size >= std::mem::size_of::<tpacket_block_desc>());
        BlockRing {
            map,
            block_size,
            mask: count - 1,
        }
    }

    /// The index after `b`, wrapping.
    #[inline]
    pub(crate) fn next(&self, b: BlockIdx) -> BlockIdx {
        BlockIdx(b.0.wrapping_add(1) & self.mask)
    }

    #[inline]
    fn block_ptr(&self, b: BlockIdx) -> *mut u8 {
        debug_assert!(b.0 <= self.mask);
        // In bounds: b < count and the mapping covers count * block_size bytes (checked in new).
        self.map
            .as_ptr()
            .wrapping_add(b.0 as usize * self.block_size)
    }

    #[inline]
    fn status(&self, b: BlockIdx) -> &AtomicU32 {
        let p = self
            .block_ptr(b)
            .wrapping_add(STATUS_OFFSET)
            .cast::<AtomicU32>();
        // SAFETY: block_status is the first u32 of `bh1`, at STATUS_OFFSET (8) inside the block
        // descriptor at the start of a page-aligned block of the mapping, so it is in bounds and
        // 4-byte aligned. The kernel
        // accesses it concurrently, which is why we only ever touch it through an atomic; the
        // mapping lives as long as `self`.
        unsafe { &*p }
    }

    /// If user space owns block `b`, returns its base pointer and packet count.
    ///
    /// (C): Acquire pairs with the kernel's `smp_wmb()` + status store in `prb_close_block` (B),
    /// so every packet byte of the block is visible before we read it.
    #[inline]
    pub(crate) fn acquire(&self, b: BlockIdx) -> Option<OwnedBlock> {
        let st = self.status(b).load(Ordering::Acquire);
        if st & TP_STATUS_USER == 0 {
            return None;
        }
        let base = self.block_ptr(b);
        // SAFETY: we own the block (status USER, acquired above), so the kernel does not write
        // it; the descriptor lies at the start of the block, in bounds and 8-byte aligned.
        let desc = unsafe { base.cast::<tpacket_block_desc>().read() };
        Some(OwnedBlock {
            base,
            len: self.block_size,
            num_pkts: desc.bh1.num_pkts,
            first: desc.bh1.offset_to_first_pkt,
        })
    }

    /// Hands block `b` back to the kernel.
    ///
    /// (D): Release orders all our reads and in-place writes of the block before the kernel can
    /// observe `TP_STATUS_KERNEL` and reuse it (A).
    #[inline]
    pub(crate) fn release(&self, b: BlockIdx) {
        self.status(b).store(TP_STATUS_KERNEL, Ordering::Release);
    }
}

/// A block user space owns between [`BlockRing::acquire`] and [`BlockRing::release`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct OwnedBlock {
    pub(crate) base: *mut u8,
    pub(crate) len: usize,
    pub(crate) num_pkts: u32,
    pub(crate) first: u32,
}
