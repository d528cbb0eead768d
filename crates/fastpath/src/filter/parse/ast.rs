//! The tree the parser builds and the code generator reads.

/// Where the link-layer type field and the network header are (they move with `vlan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Off {
    /// Offset of the EtherType field.
    pub(crate) link: u32,
    /// Offset of the network-layer header.
    pub(crate) net: u32,
}

impl Off {
    pub(super) const ETHERNET: Off = Off { link: 12, net: 14 };
}

/// Which address fields a primitive looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    Src,
    Dst,
    /// `src or dst` (the default).
    Either,
    /// `src and dst`.
    Both,
}

/// A protocol qualifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proto {
    Ether,
    Ip,
    Ip6,
    Arp,
    Rarp,
    Tcp,
    Udp,
    Sctp,
    Icmp,
    Icmp6,
    Igmp,
}

impl Proto {
    pub(super) fn from_word(w: &str) -> Option<Proto> {
        Some(match w {
            "ether" | "link" => Proto::Ether,
            "ip" => Proto::Ip,
            "ip6" => Proto::Ip6,
            "arp" => Proto::Arp,
            "rarp" => Proto::Rarp,
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            "sctp" => Proto::Sctp,
            "icmp" => Proto::Icmp,
            "icmp6" => Proto::Icmp6,
            "igmp" => Proto::Igmp,
            _ => return None,
        })
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Proto::Ether => "ether",
            Proto::Ip => "ip",
            Proto::Ip6 => "ip6",
            Proto::Arp => "arp",
            Proto::Rarp => "rarp",
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
            Proto::Icmp => "icmp",
            Proto::Icmp6 => "icmp6",
            Proto::Igmp => "igmp",
        }
    }

    /// The EtherType of a network-layer qualifier (`ip`, `ip6`, `arp`, `rarp`).
    pub(crate) fn ethertype(self) -> Option<u16> {
        Some(match self {
            Proto::Ip => 0x0800,
            Proto::Ip6 => 0x86dd,
            Proto::Arp => 0x0806,
            Proto::Rarp => 0x8035,
            _ => return None,
        })
    }

    /// The IP protocol number of a transport qualifier.
    pub(crate) fn ip_proto(self) -> Option<u8> {
        Some(match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Sctp => 132,
            Proto::Icmp => 1,
            Proto::Icmp6 => 58,
            Proto::Igmp => 2,
            _ => return None,
        })
    }
}

/// An address with its mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Net {
    V4 { addr: u32, mask: u32 },
    V6 { addr: u128, mask: u128 },
}

/// Arithmetic operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    And,
    Or,
    Xor,
    Lsh,
    Rsh,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RelOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

/// An arithmetic expression (unsigned 32-bit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Arith {
    Num(u32),
    Len,
    /// `proto[index : size]`.
    Load {
        proto: Proto,
        off: Off,
        index: Box<Arith>,
        size: u8,
    },
    Neg(Box<Arith>),
    Bin(BinOp, Box<Arith>, Box<Arith>),
}

/// A primitive test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Prim {
    /// `ether proto T`, and `ip`/`ip6`/`arp`/`rarp` alone.
    EtherType(Off, u16),
    /// An IP protocol number: over IPv4, IPv6 or both.
    IpProto {
        off: Off,
        v4: bool,
        v6: bool,
        proto: u8,
    },
    /// `[ip|ip6|arp|rarp] [dir] host|net`.
    Host {
        off: Off,
        proto: Option<Proto>,
        dir: Dir,
        net: Net,
    },
    /// `ether [dir] host MAC`.
    EtherHost { dir: Dir, mac: [u8; 6] },
    /// `ether broadcast`.
    EtherBroadcast,
    /// `ether multicast`.
    EtherMulticast,
    /// `[tcp|udp|sctp] [dir] port|portrange`: any of `ranges` (inclusive). Several come from
    /// `port 53 or port 80`, merged as libpcap's optimizer does (all source-port tests before
    /// the destination port is loaded, which decides short packets).
    Port {
        off: Off,
        proto: Option<u8>,
        dir: Dir,
        ranges: Vec<(u16, u16)>,
    },
    /// `vlan [id]`, at the offsets before this tag.
    Vlan { off: Off, id: Option<u16> },
}

/// A filter expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Prim(Prim),
    Rel(RelOp, Arith, Arith),
    /// An empty expression: every packet.
    True,
}

/// An IPv6 address as four 32-bit words, most significant first.
pub(crate) fn words(v: u128) -> [u32; 4] {
    [
        (v >> 96) as u32,
        (v >> 64) as u32,
        (v >> 32) as u32,
        v as u32,
    ]
}
