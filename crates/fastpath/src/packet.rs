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
}

/// Exact counters, as the kernel (or driver) keeps them, accumulated since the handle opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Packets the kernel offered to this socket, including those it then dropped
    /// (tcpdump's "received by filter").
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
