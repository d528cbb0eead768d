//! The public types that describe what a handle hands out: packets, counters and capabilities.
//!
//! Every rung builds these; nothing here depends on a rung.

/// One received packet, borrowed from the batch that holds it.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) orig_len: u32,
    pub(crate) ts_ns: u64,
    pub(crate) ifindex: u32,
    pub(crate) queue: Option<u32>,
    pub(crate) ts_source: TimestampSource,
    /// The kernel's packet type (`sll_pkttype`: `PACKET_HOST` ... `PACKET_OUTGOING`), or
    /// [`PKT_TYPE_BY_MAC`] where the rung has none and [`Packet::direction`] classifies the
    /// destination address against `local_mac` when asked.
    pub(crate) pkt_type: u8,
    /// The interface's MAC address, for [`PKT_TYPE_BY_MAC`] (zeros elsewhere).
    pub(crate) local_mac: [u8; 6],
}

/// Who stamped a packet's [`Packet::timestamp_ns`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum TimestampSource {
    /// The kernel, in software, when the packet reached the capture (`CLOCK_REALTIME`; the
    /// AF_PACKET rungs, and `-j adapter` packets the NIC did not stamp).
    #[default]
    Kernel,
    /// The NIC, in hardware (its raw clock, `SOF_TIMESTAMPING_RAW_HARDWARE`, or the driver's
    /// XDP receive metadata): with [`TimestampType::Adapter`](crate::TimestampType::Adapter).
    /// Comparable to system time only where the NIC clock is synchronised to it (`phc2sys`).
    Hardware,
    /// fastpath, in user space, once per batch (`CLOCK_REALTIME` when the batch was formed):
    /// `xdp` and `dpdk` without a per-packet stamp. Packets of one batch share it.
    Batch,
}

/// [`Packet::pkt_type`] of rungs that only see received frames and have no kernel packet type
/// (`xdp`, `dpdk`): the direction is worked out from the destination MAC address, lazily.
pub(crate) const PKT_TYPE_BY_MAC: u8 = 0xff;

/// Which way a packet went and whom it was addressed to: the kernel's packet type
/// (`sll_pkttype` of `<linux/if_packet.h>`), as tcpdump's `-Q` and pcapng's `epb_flags` see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Direction {
    /// Received, addressed to this host (`PACKET_HOST`).
    Host,
    /// Received, sent to the link-layer broadcast address (`PACKET_BROADCAST`).
    Broadcast,
    /// Received, sent to a link-layer multicast address (`PACKET_MULTICAST`).
    Multicast,
    /// Received, addressed to another host: seen because the interface is promiscuous
    /// (`PACKET_OTHERHOST`).
    OtherHost,
    /// Sent by this host (`PACKET_OUTGOING`).
    Outgoing,
}

impl Direction {
    /// Whether the packet was received (every direction but [`Direction::Outgoing`]).
    #[inline]
    pub fn is_incoming(self) -> bool {
        self != Direction::Outgoing
    }

    /// The direction of the kernel's packet type `t` (`PACKET_HOST` = 0 ... `PACKET_OUTGOING`
    /// = 4). The kernel hands packet sockets no other value (`PACKET_LOOPBACK` copies are
    /// dropped before them); anything else reads as received for this host.
    #[inline]
    pub(crate) fn from_pkt_type(t: u8) -> Direction {
        match t {
            1 => Direction::Broadcast,
            2 => Direction::Multicast,
            3 => Direction::OtherHost,
            4 => Direction::Outgoing,
            _ => Direction::Host,
        }
    }

    /// The direction of a received frame, from its destination MAC address as the kernel's
    /// `eth_type_trans` classifies it: group bit set, broadcast or multicast; else this host if
    /// it is `local`, another host otherwise. A frame too short to hold the address counts as
    /// this host's.
    #[inline]
    pub(crate) fn by_mac(frame: &[u8], local: &[u8; 6]) -> Direction {
        let Some(dst) = frame.get(..6) else {
            return Direction::Host;
        };
        if dst[0] & 1 != 0 {
            if dst == [0xff; 6] {
                Direction::Broadcast
            } else {
                Direction::Multicast
            }
        } else if dst == local {
            Direction::Host
        } else {
            Direction::OtherHost
        }
    }
}

impl<'a> Packet<'a> {
    /// The captured bytes (at most the snapshot length), starting at the Ethernet header. A VLAN
    /// tag the kernel stripped into metadata has been put back in place.
    #[inline]
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The length of the packet on the wire (≥ `data().len()`).
    #[inline]
    pub fn orig_len(&self) -> u32 {
        self.orig_len
    }

    /// Whether the snapshot length cut the packet short.
    #[inline]
    pub fn is_truncated(&self) -> bool {
        (self.data.len() as u32) < self.orig_len
    }

    /// Receive time in nanoseconds since the UNIX epoch (`CLOCK_REALTIME`, software stamp).
    #[inline]
    pub fn timestamp_ns(&self) -> u64 {
        self.ts_ns
    }

    /// Who stamped [`Packet::timestamp_ns`]: the kernel, the NIC, or fastpath per batch.
    #[inline]
    pub fn timestamp_source(&self) -> TimestampSource {
        self.ts_source
    }

    /// Index of the interface the packet arrived on.
    #[inline]
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The receive queue, where the backend knows it (AF_XDP, DPDK); `None` for AF_PACKET.
    #[inline]
    pub fn queue(&self) -> Option<u32> {
        self.queue
    }

    /// Which way the packet went and whom it was addressed to.
    ///
    /// On the AF_PACKET rungs (`recv`, `recv-batch`, `mmap`) this is the packet type the kernel
    /// reports (`sll_pkttype`), so sent packets are [`Direction::Outgoing`]. `xdp` and `dpdk` see
    /// only frames the device received: their direction comes from the destination MAC address
    /// (broadcast, multicast, the interface's own address or another host's), worked out when
    /// this is called.
    #[inline]
    pub fn direction(&self) -> Direction {
        if self.pkt_type == PKT_TYPE_BY_MAC {
            Direction::by_mac(self.data, &self.local_mac)
        } else {
            Direction::from_pkt_type(self.pkt_type)
        }
    }
}

/// Exact counters, as the kernel (or driver) keeps them, accumulated since the handle opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Packets the kernel offered to this socket, including those it then dropped
    /// (tcpdump's "received by filter") and those still queued for it. After
    /// [`Receiver::stop_intake`](crate::Receiver::stop_intake) and a drain,
    /// `delivered + dropped == received` exactly.
    pub received: u64,
    /// Packets the kernel dropped because the ring or socket buffer was full.
    pub dropped: u64,
    /// Packets fastpath handed to the application.
    pub delivered: u64,
    /// TPACKET_V3: times the kernel froze the queue because every block was full.
    pub freeze_queue: u64,
    /// AF_XDP: packets dropped because the RX ring was full (`rx_ring_full`; part of `dropped`).
    pub rx_ring_full: u64,
    /// AF_XDP: times the fill ring had no frame for an arriving packet
    /// (`rx_fill_ring_empty_descs`).
    pub fill_ring_empty: u64,
    /// AF_XDP: invalid RX and TX descriptors (`rx_invalid_descs + tx_invalid_descs`).
    pub invalid_descs: u64,
    /// AF_XDP: times the TX ring was empty when the kernel looked (`tx_ring_empty_descs`).
    pub tx_ring_empty: u64,
}

impl Stats {
    /// Adds another handle's counters (for fanout groups and multi-queue sets).
    pub fn merge(&mut self, other: &Stats) {
        self.received += other.received;
        self.dropped += other.dropped;
        self.delivered += other.delivered;
        self.freeze_queue += other.freeze_queue;
        self.rx_ring_full += other.rx_ring_full;
        self.fill_ring_empty += other.fill_ring_empty;
        self.invalid_descs += other.invalid_descs;
        self.tx_ring_empty += other.tx_ring_empty;
    }
}

/// What a handle can do, for callers that adapt to the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// Packets are lent in place from memory shared with the kernel or device (no copy into a
    /// user buffer): `mmap`, `xdp` (both modes), `dpdk`.
    pub zero_copy: bool,
    /// Several handles can share the traffic of one interface (fanout or queues).
    pub fanout: bool,
    /// The handle can transmit.
    pub tx: bool,
    /// Packets carry nanosecond timestamps.
    pub timestamps_ns: bool,
    /// Packets carry the NIC's hardware timestamps where it gives one
    /// ([`TimestampType::Adapter`](crate::TimestampType::Adapter) is in force; see
    /// [`Packet::timestamp_source`]).
    pub hardware_timestamps: bool,
    /// The backend waits with `poll` and supports the AF_XDP `need_wakeup` protocol.
    pub need_wakeup: bool,
    /// A packet filter can run in the kernel before any copy.
    pub kernel_filter: bool,
    /// The device writes packets straight into memory the application reads (AF_XDP zero-copy
    /// mode, DPDK). False where the kernel copies them (AF_PACKET rungs, AF_XDP copy mode).
    pub driver_zero_copy: bool,
    /// An outer VLAN tag the kernel or the device moved out of a frame into metadata is put
    /// back in place in the packets handed out: the AF_PACKET rungs always; `xdp` where the
    /// kernel (Linux 6.8+, kfunc `bpf_xdp_metadata_rx_vlan_tag`) and driver let its program
    /// read the tag (native mode); false for `dpdk`, whose driver decides.
    pub restores_vlan: bool,
    /// Human-readable mode, e.g. `"tpacket-v3"` or `"af_xdp copy"`.
    pub mode: &'static str,
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn direction_from_the_kernel_or_the_mac() {
        let kinds = [
            Direction::Host,
            Direction::Broadcast,
            Direction::Multicast,
            Direction::OtherHost,
            Direction::Outgoing,
        ];
        for (t, want) in kinds.into_iter().enumerate() {
            assert_eq!(Direction::from_pkt_type(t as u8), want);
        }
        assert!(!Direction::Outgoing.is_incoming() && Direction::OtherHost.is_incoming());
        let me = [2, 0, 0, 0, 0, 1];
        let frame = |dst: [u8; 6]| {
            let mut f = dst.to_vec();
            f.extend_from_slice(&[0; 54]);
            f
        };
        assert_eq!(Direction::by_mac(&frame(me), &me), Direction::Host);
        assert_eq!(
            Direction::by_mac(&frame([0xff; 6]), &me),
            Direction::Broadcast
        );
        let mcast = [0x01, 0, 0x5e, 0, 0, 1];
        assert_eq!(Direction::by_mac(&frame(mcast), &me), Direction::Multicast);
        let other = [2, 0, 0, 0, 0, 2];
        assert_eq!(Direction::by_mac(&frame(other), &me), Direction::OtherHost);
        assert_eq!(Direction::by_mac(&[0xff; 3], &me), Direction::Host);
        let p = Packet {
            data: &[0xff; 60],
            orig_len: 60,
            ts_ns: 0,
            ifindex: 1,
            queue: Some(0),
            ts_source: TimestampSource::Batch,
            pkt_type: PKT_TYPE_BY_MAC,
            local_mac: me,
        };
        assert_eq!(p.direction(), Direction::Broadcast);
    }
}
