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

use std::cell::Cell;
use std::mem::{align_of, size_of};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use super::{afpacket, Rung, RungBatch};
use crate::config::{Backend, Config, MmapConfig};
use crate::packet::{Capabilities, Packet, Stats, TimestampSource};
use crate::ring::tpacket::{BlockIdx, BlockRing, OwnedBlock};
use crate::sys::packet::{self as pk, tpacket3_hdr, tpacket_block_desc, VLAN_TAG_LEN};
use crate::sys::tstamp;
use crate::sys::{self, Mmap};
use crate::{Error, Result};

/// `TPACKET3_HDRLEN`: the packet header plus the `sockaddr_ll` the kernel writes after it.
const TPACKET3_HDRLEN: usize = size_of::<tpacket3_hdr>() + size_of::<libc::sockaddr_ll>();
/// Where that `sockaddr_ll` starts: `TPACKET_ALIGN(sizeof(struct tpacket3_hdr))`, 48 (checked
/// in the test).
const SLL_AT: usize = size_of::<tpacket3_hdr>();

/// Where `sll_pkttype` lies after a packet header, inside the `sockaddr_ll` at [`SLL_AT`].
const PKTTYPE_OFFSET: usize = SLL_AT + pk::SLL_PKTTYPE_OFFSET;
/// Where `sll_ifindex` lies after a packet header, inside the `sockaddr_ll` at [`SLL_AT`].
const IFINDEX_OFFSET: usize = SLL_AT + std::mem::offset_of!(libc::sockaddr_ll, sll_ifindex);

/// Why a block's contents were refused (see [`BlockIter`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockFault {
    why: &'static str,
    value: u64,
}

impl BlockFault {
    fn into_error(self) -> Error {
        Error::KernelRing {
            ring: "TPACKET_V3 block",
            why: self.why,
            value: self.value,
        }
    }
}

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
    /// `block_timeout`, for [`Rung::stop_intake`].
    block_timeout: Duration,
    /// Set by an iterator that met an impossible value in a block; every later receive fails.
    fault: Cell<Option<BlockFault>>,
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
        let loopback = afpacket::loopback(&fd, cfg)?;
        // The program goes on before `bind`: the socket has protocol 0 and queues nothing until
        // bound, so no packet the filter rejects ever reaches the ring (nothing to drain).
        if let Some(prog) = afpacket::kernel_program(cfg, loopback)? {
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
            block_timeout: m.block_timeout,
            fault: Cell::new(None),
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
        if let Some(f) = self.fault.get() {
            return Err(f.into_error());
        }
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

    fn stop_intake(&mut self) -> Result<Duration> {
        afpacket::stop_intake(&self.fd)?;
        // The kernel hands over a partly filled block when its retire timer finds it current
        // for the second time in a row: within two block timeouts, each rounded up to a timer
        // tick (at worst 10 ms, HZ = 100); 10 ms more for slack.
        Ok(2 * self.block_timeout + Duration::from_millis(30))
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
        tp_frame_nr: m.frame_count().ok_or_else(|| Error::InvalidConfig {
            field: "ring",
            why: "the number of frames overflows; use fewer or smaller blocks".into(),
        })?,
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
        BlockIter::new(b, self.sock.snaplen, self.sock.ifindex, &self.sock.fault)
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
/// Nothing the kernel wrote into the block is trusted: the first packet must lie past the block
/// descriptor, every header and packet inside the block and aligned for its header type, every
/// next header after the end of the packet before it (so the headers and tags fastpath rewrites
/// never overlap a slice already handed out). An impossible value ends the iteration and is
/// recorded in `fault`, which makes the socket's next receive fail with
/// [`Error::KernelRing`]; nothing out of bounds is ever read.
#[derive(Debug)]
pub(crate) struct BlockIter<'b> {
    block: OwnedBlock,
    off: usize,
    remaining: u32,
    snaplen: u32,
    ifindex: u32,
    fault: &'b Cell<Option<BlockFault>>,
    _batch: std::marker::PhantomData<&'b BlockBatch<'b>>,
}

impl<'b> BlockIter<'b> {
    fn new(
        block: OwnedBlock,
        snaplen: u32,
        ifindex: u32,
        fault: &'b Cell<Option<BlockFault>>,
    ) -> Self {
        let mut it = BlockIter {
            block,
            off: block.first as usize,
            remaining: block.num_pkts,
            snaplen,
            ifindex,
            fault,
            _batch: std::marker::PhantomData,
        };
        if it.remaining > 0 && it.off < size_of::<tpacket_block_desc>() {
            it.refuse(
                "first packet overlaps the block descriptor",
                block.first.into(),
            );
        }
        it
    }

    /// Ends the iteration and records why.
    #[cold]
    fn refuse(&mut self, why: &'static str, value: u64) {
        self.remaining = 0;
        if self.fault.get().is_none() {
            self.fault.set(Some(BlockFault { why, value }));
        }
    }
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
            self.refuse("packet header outside the block", off as u64);
            return None;
        }
        if off % align_of::<tpacket3_hdr>() != 0 {
            self.refuse("misaligned packet header", off as u64);
            return None;
        }
        let hp = blk.base.wrapping_add(off).cast::<tpacket3_hdr>();
        // SAFETY: the header lies inside the block and is aligned for its type (both checked
        // above; the block base is page-aligned), and user space owns the block until the batch
        // drops (acquired with status USER). We read by value: no reference into the ring is
        // created.
        let mut h = unsafe { hp.read() };
        if (h.tp_mac as usize) < TPACKET3_HDRLEN {
            self.refuse("packet data overlaps its header (tp_mac)", h.tp_mac.into());
            return None;
        }
        if h.tp_status & pk::TP_STATUS_VLAN_VALID != 0
            && h.tp_mac as usize >= TPACKET3_HDRLEN + VLAN_TAG_LEN
            && h.tp_snaplen >= 12
            && off + h.tp_mac as usize + 12 <= blk.len
        {
            restore_vlan(blk, off, &mut h);
            // SAFETY: as for the read above; we own the block, and no slice handed out so far
            // covers this header (slices of earlier packets end before it: see the check of
            // `tp_next_offset` below; this packet's starts at tp_mac, past it). Writing the fixed
            // header back (VLAN flag cleared) makes the fix-up idempotent for a second iterator.
            unsafe { hp.write(h) };
        }
        let mac = h.tp_mac as usize;
        let cap = h.tp_snaplen.min(self.snaplen) as usize;
        let Some(end) = (off + mac).checked_add(cap).filter(|&e| e <= blk.len) else {
            self.refuse("packet data outside the block", u64::from(h.tp_snaplen));
            return None;
        };
        // SAFETY: inside the header checked above (PKTTYPE_OFFSET < TPACKET3_HDRLEN); a byte
        // read by value.
        let pkt_type = unsafe { blk.base.wrapping_add(off + PKTTYPE_OFFSET).read() };
        // SAFETY: the range lies inside the owned block (checked above). The kernel does not
        // write a block user space owns, and the only writes fastpath makes (VLAN fix-ups) touch
        // a packet before its slice exists and never after: later packets start at or after
        // `end` (checked below before one is read), so the slice is not mutated while borrowed;
        // it lives no longer than the batch ('b).
        let data = unsafe { std::slice::from_raw_parts(blk.base.wrapping_add(off + mac), cap) };
        self.remaining -= 1;
        if self.remaining > 0 {
            let next = off + h.tp_next_offset as usize;
            if h.tp_next_offset == 0 || next < end {
                // This packet is still good; the iteration ends after it.
                self.refuse(
                    "next packet overlaps this one (tp_next_offset)",
                    h.tp_next_offset.into(),
                );
            }
            self.off = next;
        }
        // Bound to every interface (`any`): the packet's own, from the `sockaddr_ll` the
        // kernel writes after the header.
        let ifindex = if self.ifindex == 0 {
            // SAFETY: the header and the `sockaddr_ll` after it lie inside the owned block
            // (`off + TPACKET3_HDRLEN <= blk.len`, checked above); `sll_ifindex` is 4 bytes
            // inside it (IFINDEX_OFFSET), and the read is by value, unaligned-safe.
            unsafe {
                blk.base
                    .wrapping_add(off + IFINDEX_OFFSET)
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
            pkt_type,
            local_mac: [0; 6],
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining as usize))
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

#[cfg(test)]
mod test {
    use super::*;

    /// One packet of a fake block: where its header is, its `tp_mac`, `tp_snaplen`,
    /// `tp_next_offset` and packet type; its data bytes are all `fill`.
    struct Fake {
        off: usize,
        mac: u16,
        snaplen: u32,
        next: u32,
        pkt_type: u8,
        fill: u8,
    }

    /// A 4 KiB block (8-byte aligned heap memory, as a mapping would be) holding `pkts`.
    fn block(pkts: &[Fake]) -> Vec<u64> {
        let mut mem = vec![0u64; 512];
        for p in pkts {
            let h = tpacket3_hdr {
                tp_next_offset: p.next,
                tp_sec: 1,
                tp_nsec: 2,
                tp_snaplen: p.snaplen,
                tp_len: p.snaplen + 10,
                tp_status: 0,
                tp_mac: p.mac,
                tp_net: p.mac + 14,
                tp_rxhash: 0,
                tp_vlan_tci: 0,
                tp_vlan_tpid: 0,
                tp_padding: 0,
                tp_padding2: [0; 8],
            };
            {
                // SAFETY: the 4096 bytes of `mem`, viewed as bytes (u8 has no alignment or
                // validity requirement); `mem` is not otherwise used while the view lives.
                let bytes =
                    unsafe { std::slice::from_raw_parts_mut(mem.as_mut_ptr().cast::<u8>(), 4096) };
                // Data first: where a case makes it overlap the header, the header wins.
                let start = (p.off + p.mac as usize).min(4096);
                let end = (start + p.snaplen as usize).min(4096);
                bytes[start..end].fill(p.fill);
                bytes[p.off + PKTTYPE_OFFSET] = p.pkt_type;
            }
            let hp = mem.as_mut_ptr().cast::<u8>().wrapping_add(p.off);
            // SAFETY: `p.off + 48 <= 4096` in every case: the header lies inside `mem`;
            // unaligned, since some cases are misaligned on purpose.
            unsafe { hp.cast::<tpacket3_hdr>().write_unaligned(h) };
        }
        mem
    }

    /// Iterates over `mem` as a block of `n` packets starting at `first`: the packets' data,
    /// their directions, and the fault recorded.
    fn walk(
        mem: &mut [u64],
        first: u32,
        n: u32,
    ) -> (Vec<Vec<u8>>, Vec<crate::Direction>, Option<BlockFault>) {
        let fault = Cell::new(None);
        let blk = OwnedBlock {
            base: mem.as_mut_ptr().cast(),
            len: 4096,
            num_pkts: n,
            first,
        };
        let it = BlockIter::new(blk, 65535, 1, &fault);
        let pkts: Vec<Packet<'_>> = it.collect();
        let data = pkts.iter().map(|p| p.data().to_vec()).collect();
        let dirs = pkts.iter().map(|p| p.direction()).collect();
        (data, dirs, fault.get())
    }

    #[test]
    fn a_good_block_yields_every_packet_with_its_direction() {
        let mut mem = block(&[
            Fake {
                off: 48,
                mac: 82,
                snaplen: 60,
                next: 144,
                pkt_type: 4,
                fill: 1,
            },
            Fake {
                off: 192,
                mac: 82,
                snaplen: 70,
                next: 0,
                pkt_type: 0,
                fill: 2,
            },
        ]);
        let (data, dirs, fault) = walk(&mut mem, 48, 2);
        assert_eq!(fault, None);
        assert_eq!(data, vec![vec![1; 60], vec![2; 70]]);
        assert_eq!(dirs, [crate::Direction::Outgoing, crate::Direction::Host]);
    }

    #[test]
    fn impossible_values_end_the_iteration_with_a_fault() {
        type Case = (&'static str, u32, Vec<Fake>, usize);
        let cases: Vec<Case> = vec![
            (
                "first packet overlaps the block descriptor",
                8,
                vec![Fake {
                    off: 8,
                    mac: 82,
                    snaplen: 60,
                    next: 0,
                    pkt_type: 0,
                    fill: 1,
                }],
                0,
            ),
            (
                "misaligned packet header",
                48,
                vec![
                    Fake {
                        off: 48,
                        mac: 82,
                        snaplen: 60,
                        next: 151,
                        pkt_type: 0,
                        fill: 1,
                    },
                    Fake {
                        off: 199,
                        mac: 82,
                        snaplen: 60,
                        next: 0,
                        pkt_type: 0,
                        fill: 2,
                    },
                ],
                1,
            ),
            (
                "next packet overlaps this one (tp_next_offset)",
                48,
                vec![
                    // The next header would sit on this packet's data.
                    Fake {
                        off: 48,
                        mac: 82,
                        snaplen: 60,
                        next: 96,
                        pkt_type: 0,
                        fill: 1,
                    },
                    Fake {
                        off: 144,
                        mac: 82,
                        snaplen: 60,
                        next: 0,
                        pkt_type: 0,
                        fill: 2,
                    },
                ],
                1,
            ),
            (
                "next packet overlaps this one (tp_next_offset)",
                48,
                vec![Fake {
                    off: 48,
                    mac: 82,
                    snaplen: 60,
                    next: 0,
                    pkt_type: 0,
                    fill: 1,
                }],
                1, // num_pkts says 2, but the first has no successor
            ),
            (
                "packet data outside the block",
                48,
                vec![Fake {
                    off: 48,
                    mac: 82,
                    snaplen: 5000,
                    next: 0,
                    pkt_type: 0,
                    fill: 1,
                }],
                0,
            ),
            (
                "packet data overlaps its header (tp_mac)",
                48,
                vec![Fake {
                    off: 48,
                    mac: 20,
                    snaplen: 60,
                    next: 0,
                    pkt_type: 0,
                    fill: 1,
                }],
                0,
            ),
            ("packet header outside the block", 4080, vec![], 0),
        ];
        for (why, first, pkts, good) in cases {
            let mut mem = block(&pkts);
            let (data, _, fault) = walk(&mut mem, first, 2);
            assert_eq!(data.len(), good, "{why}");
            let f = fault.unwrap_or_else(|| panic!("no fault: {why}"));
            assert_eq!(f.why, why);
            let msg = f.into_error().to_string();
            assert!(msg.contains("TPACKET_V3") && msg.contains(why), "{msg}");
        }
    }
}
