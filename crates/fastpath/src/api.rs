//! The public types shared by every backend: configuration, packets, batches, counters and
//! capabilities.
//!
//! Implementation of the handle: [`crate::backend`]; of each rung: `backend/{recv,mmap}.rs`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::backend::xdp::XdpConfig;
use crate::bpf::Mode;
use crate::{Error, Result};

/// A rung of the receive ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// Rung 1: AF_PACKET `SOCK_RAW`, one `recvmsg` per packet into a buffer fastpath owns.
    Recv,
    /// Rung 1, batched: the same socket read with `recvmmsg(MSG_WAITFORONE)`.
    RecvBatch,
    /// Rung 2: `PACKET_MMAP` with a TPACKET_V3 block ring shared with the kernel (zero-copy).
    Mmap,
    /// Rung 4: AF_XDP socket fed by fastpath's XDP program (copy mode on veth, zero-copy where
    /// the driver supports it).
    Xdp,
    /// Rung 3: DPDK poll-mode driver (cargo feature `dpdk`).
    Dpdk,
}

impl Backend {
    /// Every backend, in ladder order.
    pub const ALL: [Backend; 5] = [
        Backend::Recv,
        Backend::RecvBatch,
        Backend::Mmap,
        Backend::Dpdk,
        Backend::Xdp,
    ];

    /// The name used on the command line (`recv`, `recv-batch`, `mmap`, `xdp`, `dpdk`).
    pub fn name(self) -> &'static str {
        match self {
            Backend::Recv => "recv",
            Backend::RecvBatch => "recv-batch",
            Backend::Mmap => "mmap",
            Backend::Xdp => "xdp",
            Backend::Dpdk => "dpdk",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Backend::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| Error::InvalidConfig {
                field: "backend",
                why: format!("`{s}` is not a backend (choose recv, recv-batch, mmap, xdp or dpdk)"),
            })
    }
}

/// How a fanout group spreads packets over its sockets (`PACKET_FANOUT` modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FanoutMode {
    /// By flow hash: both directions of a flow reach the same socket (the default).
    #[default]
    Hash,
    /// Round robin.
    Lb,
    /// By the CPU that received the packet.
    Cpu,
    /// By the receive queue the NIC recorded.
    Qm,
}

impl FromStr for FanoutMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "hash" => FanoutMode::Hash,
            "lb" => FanoutMode::Lb,
            "cpu" => FanoutMode::Cpu,
            "qm" => FanoutMode::Qm,
            _ => {
                return Err(Error::InvalidConfig {
                    field: "fanout",
                    why: format!("`{s}` is not a fanout mode (choose hash, lb, cpu or qm)"),
                })
            }
        })
    }
}

/// TPACKET_V3 ring geometry for the [`Backend::Mmap`] rung.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MmapConfig {
    /// Bytes per block; a power of two, at least one page. Default 1 MiB.
    pub block_size: u32,
    /// Number of blocks. Default 32 (32 MiB in all).
    pub block_count: u32,
    /// Frame size the kernel uses for its bookkeeping; a power of two ≥ 128 and ≤ block size.
    /// Default 2048.
    pub frame_size: u32,
    /// How long the kernel may keep a partly filled block before handing it over
    /// (`tp_retire_blk_tov`). This bounds the latency added at low packet rates. Default 1 ms.
    pub block_timeout: Duration,
}

impl Default for MmapConfig {
    fn default() -> Self {
        MmapConfig {
            block_size: 1 << 20,
            block_count: 32,
            frame_size: 2048,
            block_timeout: Duration::from_millis(1),
        }
    }
}

/// DPDK options for [`Backend::Dpdk`] (cargo feature `dpdk`).
///
/// With `dpdk`, [`Config::new`]'s interface names a DPDK device: a PCI address bound to vfio-pci
/// (`0000:03:00.0`), a virtual device (`net_af_packet0,iface=eth0`, `net_af_xdp0,iface=eth0`,
/// `net_ring0`, `net_null0`) or a port number attached by your own [`eal_args`](Self::eal_args).
///
/// ```
/// use fastpath::{Backend, Config, DpdkConfig};
/// let cfg = Config::new("net_af_packet0,iface=eth0")
///     .backend(Backend::Dpdk)
///     .dpdk(DpdkConfig::default().eal_args(["--log-level=info"]).ring_size(2048));
/// # let _ = cfg;
/// ```
// Implementation: backend/dpdk/.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DpdkConfig {
    /// Extra EAL arguments, appended after fastpath's defaults (CLI `--dpdk-args`). The EAL
    /// starts once per process, so only the first `dpdk` handle's arguments count. fastpath's
    /// defaults: `--lcores 0@(<the caller's CPUs>)`; `--vdev <spec> --no-pci` for a virtual
    /// device or `-a <address>` for PCI; `--in-memory -m 256`, `--no-huge` unless that much is
    /// free in reserved huge pages; `--no-telemetry --log-level=lib.eal:error`. Each default is
    /// left out when these arguments set the same option.
    pub eal_args: Vec<String>,
    /// RX and TX descriptors per queue (64 to 16384, default 1024; the driver may round it).
    pub ring_size: u16,
}

impl Default for DpdkConfig {
    fn default() -> Self {
        DpdkConfig {
            eal_args: Vec::new(),
            ring_size: 1024,
        }
    }
}

impl DpdkConfig {
    /// Sets [`eal_args`](Self::eal_args).
    pub fn eal_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.eal_args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`ring_size`](Self::ring_size).
    pub fn ring_size(mut self, n: u16) -> Self {
        self.ring_size = n;
        self
    }
}

/// Everything needed to open a [`Receiver`](crate::Receiver).
///
/// ```
/// use fastpath::{Backend, Config};
/// let cfg = Config::new("eth0").backend(Backend::Mmap).snaplen(128);
/// assert_eq!(cfg.backend_kind(), Backend::Mmap);
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) interface: String,
    pub(crate) backend: Backend,
    pub(crate) snaplen: u32,
    pub(crate) batch_size: usize,
    pub(crate) promiscuous: bool,
    pub(crate) rcvbuf: usize,
    pub(crate) mmap: MmapConfig,
    pub(crate) fanout: Option<(FanoutMode, Option<u16>)>,
    pub(crate) xdp: XdpConfig,
    pub(crate) queue: u32,
    pub(crate) xdp_mode: Mode,
    pub(crate) xdp_replace: bool,
    pub(crate) take: bool,
    pub(crate) dpdk: DpdkConfig,
    pub(crate) filter: Option<crate::filter::Filter>,
}

/// Largest snapshot length accepted (the same bound as tcpdump's `MAXIMUM_SNAPLEN`).
pub const MAX_SNAPLEN: u32 = 262_144;

impl Config {
    /// A configuration for `interface` with the `mmap` backend and defaults everywhere else.
    pub fn new(interface: impl Into<String>) -> Self {
        Config {
            interface: interface.into(),
            backend: Backend::Mmap,
            snaplen: MAX_SNAPLEN,
            batch_size: 64,
            promiscuous: true,
            rcvbuf: 32 << 20,
            mmap: MmapConfig::default(),
            fanout: None,
            xdp: XdpConfig::default(),
            queue: 0,
            xdp_mode: Mode::Native,
            xdp_replace: false,
            take: false,
            dpdk: DpdkConfig::default(),
            filter: None,
        }
    }

    /// Chooses the backend.
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// The chosen backend.
    pub fn backend_kind(&self) -> Backend {
        self.backend
    }

    /// The interface name.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// Captures at most `snaplen` bytes of each packet (1 to [`MAX_SNAPLEN`]).
    pub fn snaplen(mut self, snaplen: u32) -> Self {
        self.snaplen = snaplen;
        self
    }

    /// Packets per `recvmmsg` call for [`Backend::RecvBatch`] (1 to 1024, default 64).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }

    /// Whether to put the interface in promiscuous mode while capturing (default on, as tcpdump).
    pub fn promiscuous(mut self, on: bool) -> Self {
        self.promiscuous = on;
        self
    }

    /// Socket receive buffer for the recv rungs, set with `SO_RCVBUFFORCE` (default 32 MiB).
    ///
    /// The kernel charges each queued packet its whole buffer (about 4 KiB for packets built from
    /// XDP frames), so the default buffer of ~200 KiB holds only ~50 packets.
    pub fn rcvbuf(mut self, bytes: usize) -> Self {
        self.rcvbuf = bytes;
        self
    }

    /// TPACKET_V3 ring geometry for [`Backend::Mmap`].
    pub fn mmap(mut self, mmap: MmapConfig) -> Self {
        self.mmap = mmap;
        self
    }

    /// Joins a `PACKET_FANOUT` group: with `group: None` a new group with a kernel-chosen unique
    /// id is created (read it back with [`Receiver::fanout_group`](crate::Receiver::fanout_group)
    /// and pass it to the other members).
    pub fn fanout(mut self, mode: FanoutMode, group: Option<u16>) -> Self {
        self.fanout = Some((mode, group));
        self
    }

    /// AF_XDP geometry and options for [`Backend::Xdp`].
    pub fn xdp(mut self, xdp: XdpConfig) -> Self {
        self.xdp = xdp;
        self
    }

    /// The receive queue [`Receiver::open`](crate::Receiver::open) binds to with
    /// [`Backend::Xdp`] (default 0). For several queues use [`open_queues`](crate::open_queues).
    pub fn queue(mut self, queue: u32) -> Self {
        self.queue = queue;
        self
    }

    /// How the XDP program is attached: [`Mode::Native`] (default; driver support needed) or
    /// [`Mode::Generic`] (any interface, slower). Never falls back by itself.
    pub fn xdp_attach(mut self, mode: Mode) -> Self {
        self.xdp_mode = mode;
        self
    }

    /// Replace an XDP program another tool attached to the interface instead of failing.
    pub fn xdp_replace(mut self, replace: bool) -> Self {
        self.xdp_replace = replace;
        self
    }

    /// Confirms that [`Backend::Xdp`] may take every packet of the interface away from the
    /// kernel stack even though the interface has IP addresses (its own connections would
    /// stall). Without it, opening such an interface fails with [`Error::WouldTakeTraffic`].
    pub fn take(mut self, take: bool) -> Self {
        self.take = take;
        self
    }

    /// Receives only packets `filter` accepts, filtering as early as the backend allows: in the
    /// kernel before any copy (`recv`, `recv-batch`, `mmap`: `SO_ATTACH_FILTER`), in the XDP
    /// program (`xdp`: non-matching frames go on to the kernel stack, so `take` is not needed),
    /// or before a packet is handed out (`dpdk`).
    ///
    /// ```
    /// use fastpath::{Config, Filter};
    /// let cfg = Config::new("eth0").filter(Filter::new("udp and dst port 53")?);
    /// # let _ = cfg;
    /// # Ok::<(), fastpath::FilterError>(())
    /// ```
    pub fn filter(mut self, filter: crate::filter::Filter) -> Self {
        self.filter = Some(filter);
        self
    }

    /// The filter set with [`Config::filter`], if any.
    pub fn filter_ref(&self) -> Option<&crate::filter::Filter> {
        self.filter.as_ref()
    }

    /// DPDK options for [`Backend::Dpdk`]: EAL arguments, ring size.
    pub fn dpdk(mut self, dpdk: DpdkConfig) -> Self {
        self.dpdk = dpdk;
        self
    }

    /// Checks the values that need no kernel to check.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field and the accepted range.
    pub fn validate(&self) -> Result<()> {
        if self.snaplen == 0 || self.snaplen > MAX_SNAPLEN {
            return Err(Error::InvalidConfig {
                field: "snaplen",
                why: format!("{} is out of range (1 to {MAX_SNAPLEN})", self.snaplen),
            });
        }
        if self.batch_size == 0 || self.batch_size > 1024 {
            return Err(Error::InvalidConfig {
                field: "batch size",
                why: format!("{} is out of range (1 to 1024)", self.batch_size),
            });
        }
        if self.rcvbuf < 4096 || self.rcvbuf > i32::MAX as usize / 2 {
            return Err(Error::InvalidConfig {
                field: "rcvbuf",
                why: format!("{} bytes is out of range (4 KiB to 1 GiB)", self.rcvbuf),
            });
        }
        let m = &self.mmap;
        let page = crate::sys::page_size() as u32;
        if !m.block_size.is_power_of_two() || m.block_size < page {
            return Err(Error::InvalidConfig {
                field: "block size",
                why: format!(
                    "{} is not a power of two of at least one page ({page} bytes); try {}",
                    m.block_size,
                    m.block_size.max(page).next_power_of_two()
                ),
            });
        }
        if !m.frame_size.is_power_of_two() || m.frame_size < 128 || m.frame_size > m.block_size {
            return Err(Error::InvalidConfig {
                field: "frame size",
                why: format!(
                    "{} must be a power of two between 128 and the block size ({})",
                    m.frame_size, m.block_size
                ),
            });
        }
        if m.block_count == 0 || !m.block_count.is_power_of_two() {
            return Err(Error::InvalidConfig {
                field: "block count",
                why: format!(
                    "{} is not a power of two; try {}",
                    m.block_count,
                    m.block_count.max(1).next_power_of_two()
                ),
            });
        }
        if m.block_timeout.is_zero() || m.block_timeout > Duration::from_secs(60) {
            return Err(Error::InvalidConfig {
                field: "block timeout",
                why: format!("{:?} is out of range (1 ms to 60 s)", m.block_timeout),
            });
        }
        let total = u64::from(m.block_size) * u64::from(m.block_count);
        if total > u64::from(u32::MAX) {
            return Err(Error::OutOfMemory {
                what: "PACKET_RX_RING",
                asked: total,
                why: "a TPACKET_V3 ring holds at most 4 GiB; use fewer or smaller blocks".into(),
            });
        }
        let d = &self.dpdk;
        if !(64..=16384).contains(&d.ring_size) {
            return Err(Error::InvalidConfig {
                field: "ring size",
                why: format!("{} is out of range (64 to 16384)", d.ring_size),
            });
        }
        Ok(())
    }
}

/// One received packet, borrowed from the batch that holds it.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) orig_len: u32,
    pub(crate) ts_ns: u64,
    pub(crate) ifindex: u32,
    pub(crate) queue: Option<u32>,
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
