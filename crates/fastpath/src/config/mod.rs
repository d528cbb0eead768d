//! Configuration in one place: [`Config`] and the per-rung options it holds ([`MmapConfig`],
//! [`XdpConfig`], [`DpdkConfig`]), the rung and fanout choices, and [`XdpMode`].
//!
//! Each setting has one home. Settings every rung reads (interface, snapshot length, batch size,
//! filter, queue) are fields of [`Config`]; a rung's own settings live in that rung's struct, and
//! the few `Config` shorthands for them (`xdp_attach`, `xdp_replace`) write into it. Nothing here
//! knows how a rung is opened: the backends read a validated `Config`.

mod dpdk;
mod mmap;
mod xdp;

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

pub use dpdk::DpdkConfig;
pub use mmap::MmapConfig;
pub use xdp::{XdpConfig, ZeroCopy};

/// Where an XDP program runs (driver or generic): [`bpf::Mode`](crate::bpf::Mode), named for
/// what it configures here ([`XdpConfig::mode`], [`Config::xdp_attach`]).
pub use crate::bpf::Mode as XdpMode;

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

/// Which clock stamps received packets (tcpdump's `-j`, "time stamp type").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TimestampType {
    /// The kernel's software stamp when the packet reaches the capture (the default; `xdp` and
    /// `dpdk` stamp each batch in user space instead).
    #[default]
    Host,
    /// The NIC's hardware stamp, where the NIC has one (turned on with `SIOCSHWTSTAMP` for
    /// every packet, as libpcap does; the setting stays with the device): the AF_PACKET rungs
    /// ask for `SOF_TIMESTAMPING_RAW_HARDWARE`; `xdp` reads the driver's receive timestamp
    /// metadata (kfunc `bpf_xdp_metadata_rx_timestamp`, native mode). Opening fails with
    /// [`Error::Unsupported`] naming the interface where it has none.
    Adapter,
}

impl FromStr for TimestampType {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "host" => Ok(TimestampType::Host),
            "adapter" | "adapter_unsynced" => Ok(TimestampType::Adapter),
            _ => Err(Error::InvalidConfig {
                field: "time stamp type",
                why: format!("`{s}` is not one (choose host or adapter)"),
            }),
        }
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

/// Which packets a handle receives, by direction (tcpdump's `-Q in|out|inout`,
/// [`Config::direction`](crate::Config::direction)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum CaptureDirection {
    /// Only packets the interface received.
    In,
    /// Only packets this host sent.
    Out,
    /// Both (the default). On a loopback interface every packet is both sent and received; only
    /// the received copy is kept, so each packet is seen once, as libpcap does.
    #[default]
    InOut,
}

impl FromStr for CaptureDirection {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "in" => CaptureDirection::In,
            "out" => CaptureDirection::Out,
            "inout" => CaptureDirection::InOut,
            _ => {
                return Err(Error::InvalidConfig {
                    field: "direction",
                    why: format!("`{s}` is not a direction (choose in, out or inout)"),
                })
            }
        })
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
    pub(crate) direction: CaptureDirection,
    pub(crate) rcvbuf: usize,
    pub(crate) mmap: MmapConfig,
    pub(crate) fanout: Option<(FanoutMode, Option<u16>)>,
    pub(crate) xdp: XdpConfig,
    pub(crate) queue: u32,
    pub(crate) take: bool,
    pub(crate) dpdk: DpdkConfig,
    pub(crate) filter: Option<crate::filter::Filter>,
    pub(crate) timestamps: TimestampType,
}

pub use crate::limits::MAX_SNAPLEN;

impl Config {
    /// A configuration for `interface` with the `mmap` backend and defaults everywhere else.
    ///
    /// `"any"` captures on every interface of the network namespace whose frames have an
    /// Ethernet header (Ethernet devices, veths, bridges, the loopback; not tunnels), with the
    /// AF_PACKET backends only, like libpcap's `any` device: the socket binds to ifindex 0,
    /// each [`Packet::ifindex`](crate::Packet::ifindex) names the packet's own interface, a
    /// packet that crosses two interfaces (a veth pair) is seen on both, and promiscuous mode
    /// is not set.
    pub fn new(interface: impl Into<String>) -> Self {
        Config {
            interface: interface.into(),
            backend: Backend::Mmap,
            snaplen: MAX_SNAPLEN,
            batch_size: 64,
            promiscuous: true,
            direction: CaptureDirection::InOut,
            rcvbuf: 32 << 20,
            mmap: MmapConfig::default(),
            fanout: None,
            xdp: XdpConfig::default(),
            queue: 0,
            take: false,
            dpdk: DpdkConfig::default(),
            filter: None,
            timestamps: TimestampType::Host,
        }
    }

    /// Which clock stamps packets (default [`TimestampType::Host`]).
    pub fn timestamps(mut self, t: TimestampType) -> Self {
        self.timestamps = t;
        self
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

    /// Packets per batch (1 to 1024, default 64): per `recvmmsg` call for
    /// [`Backend::RecvBatch`], most descriptors per batch for [`Backend::Xdp`] (also at most
    /// [`XdpConfig::rx_size`]), the burst size for [`Backend::Dpdk`].
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }

    /// Whether to put the interface in promiscuous mode while capturing (default on, as tcpdump).
    pub fn promiscuous(mut self, on: bool) -> Self {
        self.promiscuous = on;
        self
    }

    /// Which packets to receive by direction (tcpdump's `-Q`; default
    /// [`CaptureDirection::InOut`]).
    ///
    /// The AF_PACKET rungs (`recv`, `recv-batch`, `mmap`) decide in the kernel, before a packet
    /// is queued or counted, with the packet type the kernel assigns (a short program in front of
    /// the socket filter). On a loopback interface, where every packet is both sent and
    /// received, `InOut` keeps only the received copy, so each packet is seen once (as libpcap
    /// does); `Out` keeps the sent copy. `xdp` and `dpdk` see only what the device receives:
    /// `In` and `InOut` are the same there and `Out` is refused.
    pub fn direction(mut self, direction: CaptureDirection) -> Self {
        self.direction = direction;
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

    /// Every AF_XDP setting for [`Backend::Xdp`] at once, the attach mode and `replace`
    /// included: call it before [`xdp_attach`](Self::xdp_attach) and
    /// [`xdp_replace`](Self::xdp_replace), which write into it.
    pub fn xdp(mut self, xdp: XdpConfig) -> Self {
        self.xdp = xdp;
        self
    }

    /// The receive queue [`Receiver::open`](crate::Receiver::open) binds to with
    /// [`Backend::Xdp`] or [`Backend::Dpdk`] (default 0). For several queues use
    /// [`open_queues`](crate::open_queues).
    pub fn queue(mut self, queue: u32) -> Self {
        self.queue = queue;
        self
    }

    /// How the XDP program is attached: [`XdpMode::Native`] (default; driver support needed) or
    /// [`XdpMode::Generic`] (any interface, slower). Never falls back by itself. Sets
    /// [`XdpConfig::mode`].
    pub fn xdp_attach(mut self, mode: XdpMode) -> Self {
        self.xdp.mode = mode;
        self
    }

    /// Replace an XDP program another tool attached to the interface instead of failing. Sets
    /// [`XdpConfig::replace`].
    pub fn xdp_replace(mut self, replace: bool) -> Self {
        self.xdp.replace = replace;
        self
    }

    /// Confirms that [`Backend::Xdp`] may take packets of the interface away from the kernel
    /// stack even though the interface has IP addresses: every packet, or with a
    /// [`filter`](Self::filter) every packet it accepts (the host's own connections that match
    /// would stall: `tcp` takes SSH). Without it, opening such an interface fails with
    /// [`Error::WouldTakeTraffic`].
    pub fn take(mut self, take: bool) -> Self {
        self.take = take;
        self
    }

    /// Receives only packets `filter` accepts, filtering as early as the backend allows: in the
    /// kernel before any copy (`recv`, `recv-batch`, `mmap`: `SO_ATTACH_FILTER`), in the XDP
    /// program (`xdp`: non-matching frames go on to the kernel stack, matching ones are taken
    /// from it, so an interface with addresses still needs [`take`](Self::take)), or before a
    /// packet is handed out (`dpdk`).
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
        if self.interface == "any" && matches!(self.backend, Backend::Xdp | Backend::Dpdk) {
            return Err(Error::InvalidConfig {
                field: "interface",
                why: format!(
                    "`any` (every interface) works with the AF_PACKET backends only; \
                     -b {} needs one interface: give its name, or several as `-i a,b`",
                    self.backend
                ),
            });
        }
        if self.direction == CaptureDirection::Out
            && matches!(self.backend, Backend::Xdp | Backend::Dpdk)
        {
            return Err(Error::InvalidConfig {
                field: "direction",
                why: format!(
                    "-b {} sees only packets the device receives, so `out` would capture nothing; \
                     capture sent packets with recv, recv-batch or mmap",
                    self.backend
                ),
            });
        }
        self.mmap.validate()?;
        self.dpdk.validate()
    }
}
