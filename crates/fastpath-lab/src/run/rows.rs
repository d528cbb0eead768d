//! The rows of the ladder: what each measures, its name, kind and rung.

use fastpath::Backend;

use crate::peers::Peer;
use crate::report::{Kind, Rung};

/// One row of the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowSpec {
    /// A fastpath backend through [`Receiver`](fastpath::Receiver).
    Fastpath(Backend),
    /// A peer tool.
    Peer(Peer),
    /// The `xdp` backend with busy polling (`SO_PREFER_BUSY_POLL`, `SO_BUSY_POLL` 20 µs,
    /// budget 64) instead of poll + need_wakeup.
    XdpBusyPoll,
    /// XDP_DROP on the receiving veth.
    Ceiling,
    /// A fastpath backend with the filter `udp src port 1024`, which passes 1 of the generator's
    /// 10 flows: the rejected 90 % must cost (almost) nothing in user space.
    Filtered(Backend),
}

/// The filtered rows' expression: flow 0 of the generator (its first UDP source port).
pub(crate) const FILTER: &str = "udp src port 1024";
/// Flows the generator spreads packets over in the filtered rows (1 in 10 passes [`FILTER`]).
pub(crate) const FILTER_FLOWS: u16 = 10;

impl RowSpec {
    /// Every row, in table order.
    pub const ALL: [RowSpec; 15] = [
        RowSpec::Fastpath(Backend::Recv),
        RowSpec::Fastpath(Backend::RecvBatch),
        RowSpec::Fastpath(Backend::Mmap),
        RowSpec::Fastpath(Backend::Xdp),
        RowSpec::XdpBusyPoll,
        // fastpath's dpdk backend on DPDK's af_packet PMD (the device dpdk-testpmd-af_packet
        // uses); "unavailable" unless built with `--features dpdk`.
        RowSpec::Fastpath(Backend::Dpdk),
        RowSpec::Filtered(Backend::Mmap),
        RowSpec::Filtered(Backend::Xdp),
        RowSpec::Peer(Peer::Tcpdump),
        RowSpec::Peer(Peer::NetsniffNg),
        RowSpec::Peer(Peer::TestpmdAfPacket),
        RowSpec::Peer(Peer::TestpmdAfXdp),
        RowSpec::Peer(Peer::NetringV3),
        RowSpec::Peer(Peer::NetringXdp),
        RowSpec::Ceiling,
    ];

    /// Row name.
    pub fn name(self) -> &'static str {
        match self {
            RowSpec::Fastpath(b) => b.name(),
            RowSpec::XdpBusyPoll => "xdp-busy-poll",
            RowSpec::Filtered(Backend::Xdp) => "xdp-filtered",
            RowSpec::Filtered(_) => "mmap-filtered",
            RowSpec::Peer(p) => p.name(),
            RowSpec::Ceiling => "xdp-drop",
        }
    }

    /// Row kind.
    pub fn kind(self) -> Kind {
        match self {
            RowSpec::Fastpath(_) | RowSpec::XdpBusyPoll | RowSpec::Filtered(_) => Kind::Fastpath,
            RowSpec::Peer(_) => Kind::Peer,
            RowSpec::Ceiling => Kind::Ceiling,
        }
    }

    /// The filter expression it runs with, if any (it is compared only with rows running the
    /// same).
    pub fn filter(self) -> Option<&'static str> {
        matches!(self, RowSpec::Filtered(_)).then_some(FILTER)
    }

    /// The rung it competes on.
    pub fn rung(self) -> Rung {
        match self {
            RowSpec::Fastpath(Backend::Xdp)
            | RowSpec::Filtered(Backend::Xdp)
            | RowSpec::XdpBusyPoll
            | RowSpec::Peer(Peer::TestpmdAfXdp | Peer::NetringXdp) => Rung::Xdp,
            RowSpec::Fastpath(Backend::Mmap | Backend::Dpdk)
            | RowSpec::Filtered(_)
            | RowSpec::Peer(_) => Rung::Mmap,
            RowSpec::Fastpath(_) => Rung::Recv,
            RowSpec::Ceiling => Rung::Kernel,
        }
    }
}

impl std::str::FromStr for RowSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        RowSpec::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = RowSpec::ALL.iter().map(|r| r.name()).collect();
                format!("`{s}` is not a row (choose from {})", names.join(", "))
            })
    }
}
