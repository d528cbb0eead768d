//! Rung 2: `PACKET_MMAP` with a TPACKET_V3 block ring shared with the kernel.
//!
//! The kernel writes packets back to back into the current block and hands the whole block to
//! user space when it is full or when `tp_retire_blk_tov` passes. A [`Batch`](crate::Batch) is
//! one block: its packets are read in place (zero-copy) and the block goes back to the kernel
//! when the batch drops. One `poll` per block at most, none while blocks are waiting: this is why
//! V3 needs ~20 ns of CPU per packet where V2 needs ~440 ns (it wakes the reader per packet).
//!
//! Latency: at low rates a packet waits until its block retires. fastpath asks for a 1 ms retire
//! timeout by default ([`MmapConfig::block_timeout`]).
#![allow(unsafe_code)]

use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use super::{afpacket, Rung, RungBatch};
use crate::config::{Backend, Config, MmapConfig};
use crate::packet::{Capabilities, Packet, Stats, TimestampSource};
use crate::ring::tpacket::{BlockIdx, BlockRing, OwnedBlock};
use crate::sys::packet::{self as pk, tpacket3_hdr, VLAN_TAG_LEN};
use crate::sys::tstamp;
use crate::sys::{self, Mmap};
use crate::{Error, Result};

/// `TPACKET3_HDRLEN`: the packet header plus the `sockaddr_ll` the kernel writes after it.
const TPACKET3_HDRLEN: usize = size_of::<tpacket3_hdr>() + size_of::<libc::sockaddr_ll>();
/// Where that `sockaddr_ll` starts: `TPACKET_ALIGN(sizeof(struct tpacket3_hdr))`, 48.
const SLL_AT: usize = size_of::<tpacket3_hdr>();

/// The rung-2 socket and its ring.
#[derive(Debug)]
pub(crate) struct MmapSocket {
    // Field order matters for drop: the ring is unmapped before the socket closes.
    ring: BlockRing,
    fd: OwnedFd,
    cur: BlockIdx,
    ifindex: u32,
    snaplen: u32,
    stats: Stats,
    fanout_group: Option<u16>,
    /// The ring reports the NIC's stamps (`TimestampType::Adapter`).
    hw_timestamps: bool,
}

impl MmapSocket {
    /// Opens the socket on `cfg.interface()` (looked up here) with its ring mapped, bound and
    /// receiving.
    pub(crate) fn open(cfg: &Config) -> Result<Self> {
        let ifindex = afpacket::bind_index(cfg)?;
        let m = cfg.mmap;
        let total = u64::from(m.block_size) * u64::from(m.block_count);
        check_memory(total)?;
        let fd = afpacket::socket(cfg)?;
        set_v3_with_headroom(&fd)?;
        let hw_timestamps = afpacket::hw_timestamps(&fd, cfg)?;
        if hw_timestamps {
            tstamp::set_packet_timestamp(&fd, tstamp::SOF_TIMESTAMPING_RAW_HARDWARE)?;
        }
        request_ring(&fd, &m, total)?;
        let map = Mmap::shared(&fd, total as usize, 0, "PACKET_RX_RING")?;
        // SAFETY: `map` is the mapping of the TPACKET_V3 RX ring just requested with exactly
        // `block_size` x `block_count`.
        let ring = unsafe { BlockRing::new(map, m.block_size as usize, m.block_count) };
        // The program goes on before `bind`: the socket has protocol 0 and queues nothing until
        // bound, so no packet the filter rejects ever reaches the ring (nothing to drain).
        if let Some(prog) = afpacket::kernel_program(cfg)? {
            pk::attach_filter(&fd, &prog)?;
        }
        sys::bind_all(&fd, ifindex)?;
        let fanout_group = afpacket::join(&fd, cfg, ifindex)?;
        Ok(MmapSocket {
            ring,
            fd,
            cur: BlockIdx(0),
            ifindex,
            snaplen: cfg.snaplen,
            stats: Stats::default(),
            fanout_group,
            hw_timestamps,
        })
    }
}

impl Rung for MmapSocket {
    type Batch<'a> = BlockBatch<'a>;

    fn backend(&self) -> Backend {
        Backend::Mmap
    }

    fn ifindex(&self) -> u32 {
        self.ifindex
    }

    #[inline]
    fn receive(&mut self, timeout: Option<Duration>) -> Result<BlockBatch<'_>> {
        let mut waited = false;
        let block = loop {
            if let Some(b) = self.ring.acquire(self.cur) {
                break Some(b);
            }
            if waited || timeout == Some(Duration::ZERO) {
                break None;
            }
            if !sys::poll_readable(self.fd.as_raw_fd(), timeout)? {
                break None;
            }
            waited = true;
        };
        if let Some(b) = &block {
            self.stats.delivered += u64::from(b.num_pkts);
        }
        Ok(BlockBatch { sock: self, block })
    }

    fn stats(&mut self) -> Result<Stats> {
        afpacket::add_statistics(&self.fd, &mut self.stats)?;
        Ok(self.stats)
    }

    fn capabilities(&self) -> Capabilities {
        caps(self.hw_timestamps)
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn ready(&mut self) -> Result<bool> {
        Ok(self.ring.acquire(self.cur).is_some())
    }

    fn fanout_group(&self) -> Option<u16> {
        self.fanout_group
    }
}

/// What an `mmap` handle reports; `hw`: hardware timestamps are on.
pub(crate) fn caps(hw: bool) -> Capabilities {
    Capabilities {
        zero_copy: true,
        fanout: true,
        tx: false,
        timestamps_ns: true,
        hardware_timestamps: hw,
        need_wakeup: false,
        kernel_filter: true,
        driver_zero_copy: false,
        restores_vlan: true,
        mode: "tpacket-v3",
    }
}

/// Refuses a ring larger than half the memory available.
fn check_memory(total: u64) -> Result<()> {
    if let Some(avail) = sys::mem_available() {
        if total > avail / 2 {
            return Err(Error::OutOfMemory {
                what: "PACKET_RX_RING",
                asked: total,
                why: format!(
                    "only {avail} bytes of memory are available and fastpath uses at most half; \
                     lower --block-size or --blocks"
                ),
            });
        }
    }
    Ok(())
}

/// `PACKET_VERSION = TPACKET_V3`, and `PACKET_RESERVE` headroom in front of each frame so a
/// stripped VLAN tag can be put back in place.
fn set_v3_with_headroom(fd: &OwnedFd) -> Result<()> {
    sys::setsockopt(
        fd,
        libc::SOL_PACKET,
        pk::PACKET_VERSION,
        &pk::TPACKET_V3,
        "setsockopt(PACKET_VERSION, TPACKET_V3)",
    )?;
    let reserve = VLAN_TAG_LEN as libc::c_uint;
    sys::setsockopt(
        fd,
        libc::SOL_PACKET,
        pk::PACKET_RESERVE,
        &reserve,
        "setsockopt(PACKET_RESERVE)",
    )
}

/// `PACKET_RX_RING` with `m`'s geometry (`total` bytes), naming what the kernel refused.
fn request_ring(fd: &OwnedFd, m: &MmapConfig, total: u64) -> Result<()> {
    let tov_ms = m.block_timeout.as_micros().div_ceil(1000).max(1) as u32;
    let req = pk::tpacket_req3 {
        tp_block_size: m.block_size,
        tp_block_nr: m.block_count,
        tp_frame_size: m.frame_size,
        tp_frame_nr: (m.block_size / m.frame_size) * m.block_count,
        tp_retire_blk_tov: tov_ms,
        tp_sizeof_priv: 0,
        tp_feature_req_word: 0,
    };
    sys::setsockopt(
        fd,
        libc::SOL_PACKET,
        pk::PACKET_RX_RING,
        &req,
        "setsockopt(PACKET_RX_RING)",
    )
    .map_err(|e| match e.raw_os_error() {
        Some(libc::ENOMEM) => Error::OutOfMemory {
            what: "PACKET_RX_RING",
            asked: total,
            why: "the kernel could not allocate the ring; lower --block-size or --blocks".into(),
        },
        Some(libc::EINVAL) => Error::InvalidConfig {
            field: "ring",
            why: format!(
                "the kernel refused block size {} x {} blocks, frame size {}",
                m.block_size, m.block_count, m.frame_size
            ),
        },
        _ => e,
    })
}

/// One TPACKET_V3 block lent to the caller; returned to the kernel on drop.
#[derive(Debug)]
pub(crate) struct BlockBatch<'a> {
    sock: &'a mut MmapSocket,
    block: Option<OwnedBlock>,
}

impl RungBatch for BlockBatch<'_> {
    type Iter<'b>
        = BlockIter<'b>
    where
        Self: 'b;

    fn len(&self) -> usize {
        self.block.map_or(0, |b| b.num_pkts as usize)
    }

    fn iter(&self) -> BlockIter<'_> {
        let b = self.block.unwrap_or(OwnedBlock {
            base: std::ptr::null_mut(),
            len: 0,
            num_pkts: 0,
            first: 0,
        });
        BlockIter {
            block: b,
            off: b.first as usize,
            remaining: b.num_pkts,
            snaplen: self.sock.snaplen,
            ifindex: self.sock.ifindex,
            _batch: std::marker::PhantomData,
        }
    }
}

impl Drop for BlockBatch<'_> {
    fn drop(&mut self) {
        if self.block.take().is_some() {
            self.sock.ring.release(self.sock.cur);
            self.sock.cur = self.sock.ring.next(self.sock.cur);
        }
    }
}

/// Walks the packets of an owned block by `tp_next_offset`.
///
/// Bounds: every header and every packet is checked to lie inside the block before it is read;
/// a violation (a kernel bug) ends the iteration instead of reading out of bounds.
#[derive(Debug)]
pub(crate) struct BlockIter<'b> {
    block: OwnedBlock,
    off: usize,
    remaining: u32,
    snaplen: u32,
    ifindex: u32,
    _batch: std::marker::PhantomData<&'b BlockBatch<'b>>,
}

impl<'b> Iterator for BlockIter<'b> {
    type Item = Packet<'b>;

    #[inline]
    fn next(&mut self) -> Option<Packet<'b>> {
        if self.remaining == 0 {
            return None;
        }
        let blk = self.block;
        let off = self.off;
        if off
            .checked_add(TPACKET3_HDRLEN)
            .is_none_or(|end| end > blk.len)
        {
            self.remaining = 0;
            return None;
        }
        let hp = blk.base.wrapping_add(off).cast::<tpacket3_hdr>();
        // SAFETY: the header lies inside the block (checked above), which user space owns until
        // the batch drops (acquired with status USER); offsets are TPACKET_ALIGN(16)-aligned.
        // We read by value: no reference into the ring is created.
        let mut h = unsafe { hp.read() };
        if h.tp_status & pk::TP_STATUS_VLAN_VALID != 0
            && h.tp_mac as usize >= TPACKET3_HDRLEN + VLAN_TAG_LEN
            && h.tp_snaplen >= 12
            && off + h.tp_mac as usize + 12 <= blk.len
        {
            restore_vlan(blk, off, &mut h);
            // SAFETY: as for the read above; we own the block, and no slice handed out so far
            // covers this header (slices start at tp_mac). Writing the fixed header back (VLAN
            // flag cleared) makes the fix-up idempotent for a second iterator.
            unsafe { hp.write(h) };
        }
        let mac = h.tp_mac as usize;
        let cap = h.tp_snaplen.min(self.snaplen) as usize;
        if (off + mac).checked_add(cap).is_none_or(|end| end > blk.len) {
            self.remaining = 0;
            return None;
        }
        // SAFETY: the range lies inside the owned block (checked above). The kernel does not
        // write a block user space owns, and the only writes fastpath makes (VLAN fix-ups) touch
        // a packet before its slice exists and never after, so the slice is not mutated while
        // borrowed; it lives no longer than the batch ('b).
        let data = unsafe { std::slice::from_raw_parts(blk.base.wrapping_add(off + mac), cap) };
        self.remaining -= 1;
        if self.remaining > 0 {
            if h.tp_next_offset == 0 {
                self.remaining = 0;
            }
            self.off = off + h.tp_next_offset as usize;
        }
        // Bound to every interface (`any`): the packet's own, from the `sockaddr_ll` the
        // kernel writes after the header.
        let ifindex = if self.ifindex == 0 {
            // SAFETY: the header and the `sockaddr_ll` after it lie inside the owned block
            // (`off + TPACKET3_HDRLEN <= blk.len`, checked above); `sll_ifindex` is 4 bytes at
            // offset 4 of it, and the read is by value, unaligned-safe.
            unsafe {
                blk.base
                    .wrapping_add(off + SLL_AT + 4)
                    .cast::<i32>()
                    .read_unaligned() as u32
            }
        } else {
            self.ifindex
        };
        Some(Packet {
            data,
            orig_len: h.tp_len,
            ts_ns: u64::from(h.tp_sec) * 1_000_000_000 + u64::from(h.tp_nsec),
            ifindex,
            queue: None,
            ts_source: if h.tp_status & tstamp::TP_STATUS_TS_RAW_HARDWARE != 0 {
                TimestampSource::Hardware
            } else {
                TimestampSource::Kernel
            },
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining as usize, Some(self.remaining as usize))
    }
}

/// Moves the MAC addresses 4 bytes back into the reserved headroom and writes the tag the kernel
/// stripped (`tp_vlan_tci`/`tp_vlan_tpid`) after them; updates the header to match.
///
/// The caller checked that `[mac - 4, mac + 12)` lies inside the block, after this packet's
/// header and `sockaddr_ll` (`tp_mac ≥ TPACKET3_HDRLEN + 4`, the space `PACKET_RESERVE`
/// guarantees), and that the packet holds at least the 12 bytes of MAC addresses.
fn restore_vlan(blk: OwnedBlock, off: usize, h: &mut tpacket3_hdr) {
    let mac = off + h.tp_mac as usize;
    // SAFETY: the range is inside the block, which user space owns until the batch drops (see
    // above). No other reference covers it: slices handed out so far are of earlier packets,
    // which end before this packet's header, and this packet's slice is made after the fix-up.
    let frame = unsafe {
        std::slice::from_raw_parts_mut(blk.base.wrapping_add(mac - VLAN_TAG_LEN), VLAN_TAG_LEN + 12)
    };
    let tpid = pk::vlan_tpid(h.tp_status, h.tp_vlan_tpid);
    afpacket::insert_vlan(frame, h.tp_vlan_tci as u16, tpid);
    h.tp_mac -= VLAN_TAG_LEN as u16;
    h.tp_snaplen += VLAN_TAG_LEN as u32;
    h.tp_len += VLAN_TAG_LEN as u32;
    h.tp_status &= !pk::TP_STATUS_VLAN_VALID;
}
