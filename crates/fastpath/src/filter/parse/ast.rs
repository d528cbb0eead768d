//! The tree the parser builds and the code generator reads.

/// Where a field is: `k` bytes past the start of the frame, or, inside a tunnel whose inner
/// headers move with the packet (`geneve`, `vxlan`), `k` bytes past the offset the program
/// stored in scratch word `reg` when it found the tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    pub(crate) reg: Option<u32>,
    pub(crate) k: u32,
}

impl Pos {
    pub(crate) const fn at(k: u32) -> Pos {
        Pos { reg: None, k }
    }

    /// `n` bytes further on.
    pub(crate) const fn plus(self, n: u32) -> Pos {
        Pos {
            reg: self.reg,
            k: self.k.wrapping_add(n),
        }
    }

    /// `n` bytes back (the parser only asks where the headers it walked over are).
    pub(crate) const fn minus(self, n: u32) -> Pos {
        Pos {
            reg: self.reg,
            k: self.k.wrapping_sub(n),
        }
    }
}

/// What the link-layer type field at [`Off::linktype`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkKind {
    /// An EtherType, or an 802.3 length followed by an 802.2 LLC header.
    Ether,
    /// Nothing: inside an MPLS label stack, the network protocol is told by the bottom-of-stack
    /// bit of the last label and the IP version nibble.
    Mpls,
    /// A PPP protocol number (inside a PPPoE session).
    Ppp,
}

/// Where the headers are for a primitive: they move with `vlan`, `mpls`, `pppoes`, `geneve`
/// and `vxlan`, which apply to everything after them in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Off {
    /// The link-layer header (Ethernet MAC addresses).
    pub(crate) linkhdr: Pos,
    /// The link-layer type field.
    pub(crate) linktype: Pos,
    /// The link-layer payload: the 802.2 LLC header of an 802.3 frame.
    pub(crate) llc: Pos,
    /// An OSI network PDU after a 3-byte LLC header.
    pub(crate) nosnap: Pos,
    /// The network-layer header.
    pub(crate) net: Pos,
    pub(crate) kind: LinkKind,
    /// Inside Geneve, the inner packet may have no Ethernet header: Ethernet address tests
    /// first check that the scratch words holding its start and its end differ.
    pub(crate) l2_check: Option<(u32, u32)>,
    /// MPLS labels walked over (0: not in a label stack).
    pub(crate) labels: u32,
}

impl Off {
    pub(crate) const ETHERNET: Off = Off {
        linkhdr: Pos::at(0),
        linktype: Pos::at(12),
        llc: Pos::at(14),
        nosnap: Pos::at(17),
        net: Pos::at(14),
        kind: LinkKind::Ether,
        l2_check: None,
        labels: 0,
    };
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

/// A protocol qualifier (`pname` in libpcap's grammar).
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
    Igrp,
    Pim,
    Vrrp,
    Carp,
    Ah,
    Esp,
    Atalk,
    Aarp,
    Decnet,
    Lat,
    Sca,
    Moprc,
    Mopdl,
    Iso,
    Esis,
    Isis,
    IsisL1,
    IsisL2,
    Iih,
    Lsp,
    Snp,
    Csnp,
    Psnp,
    Clnp,
    Stp,
    Ipx,
    Netbeui,
}

impl Proto {
    pub(super) fn from_word(w: &str) -> Option<Proto> {
        Some(match w {
            // libpcap's aliases of the link layer.
            "ether" | "link" | "ppp" | "slip" | "fddi" | "tr" | "wlan" => Proto::Ether,
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
            "igrp" => Proto::Igrp,
            "pim" => Proto::Pim,
            "vrrp" => Proto::Vrrp,
            "carp" => Proto::Carp,
            "ah" => Proto::Ah,
            "esp" => Proto::Esp,
            "atalk" => Proto::Atalk,
            "aarp" => Proto::Aarp,
            "decnet" => Proto::Decnet,
            "lat" => Proto::Lat,
            "sca" => Proto::Sca,
            "moprc" => Proto::Moprc,
            "mopdl" => Proto::Mopdl,
            "iso" => Proto::Iso,
            "esis" | "es-is" => Proto::Esis,
            "isis" | "is-is" => Proto::Isis,
            "l1" => Proto::IsisL1,
            "l2" => Proto::IsisL2,
            "iih" => Proto::Iih,
            "lsp" => Proto::Lsp,
            "snp" => Proto::Snp,
            "csnp" => Proto::Csnp,
            "psnp" => Proto::Psnp,
            "clnp" => Proto::Clnp,
            "stp" => Proto::Stp,
            "ipx" => Proto::Ipx,
            "netbeui" => Proto::Netbeui,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
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
            Proto::Igrp => "igrp",
            Proto::Pim => "pim",
            Proto::Vrrp => "vrrp",
            Proto::Carp => "carp",
            Proto::Ah => "ah",
            Proto::Esp => "esp",
            Proto::Atalk => "atalk",
            Proto::Aarp => "aarp",
            Proto::Decnet => "decnet",
            Proto::Lat => "lat",
            Proto::Sca => "sca",
            Proto::Moprc => "moprc",
            Proto::Mopdl => "mopdl",
            Proto::Iso => "iso",
            Proto::Esis => "esis",
            Proto::Isis => "isis",
            Proto::IsisL1 => "l1",
            Proto::IsisL2 => "l2",
            Proto::Iih => "iih",
            Proto::Lsp => "lsp",
            Proto::Snp => "snp",
            Proto::Csnp => "csnp",
            Proto::Psnp => "psnp",
            Proto::Clnp => "clnp",
            Proto::Stp => "stp",
            Proto::Ipx => "ipx",
            Proto::Netbeui => "netbeui",
        }
    }

    /// The link-layer protocol a protocol alone tests for (libpcap's `gen_linktype` argument:
    /// an EtherType, or an 802.2 SAP when at most 1500).
    pub(crate) fn link_proto(self) -> Option<u32> {
        Some(match self {
            Proto::Ip => 0x0800,
            Proto::Ip6 => 0x86dd,
            Proto::Arp => 0x0806,
            Proto::Rarp => 0x8035,
            Proto::Atalk => 0x809b,
            Proto::Aarp => 0x80f3,
            Proto::Decnet => 0x6003,
            Proto::Lat => 0x6004,
            Proto::Sca => 0x6007,
            Proto::Moprc => 0x6002,
            Proto::Mopdl => 0x6001,
            Proto::Iso => u32::from(LLCSAP_ISONS),
            Proto::Stp => 0x42,
            Proto::Ipx => u32::from(LLCSAP_IPX),
            Proto::Netbeui => 0xf0,
            _ => return None,
        })
    }

    /// The IP protocol number of a protocol carried over IP.
    pub(crate) fn ip_proto(self) -> Option<u8> {
        Some(match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Sctp => 132,
            Proto::Icmp => 1,
            Proto::Icmp6 => 58,
            Proto::Igmp => 2,
            Proto::Igrp => 9,
            Proto::Pim => 103,
            Proto::Vrrp | Proto::Carp => 112,
            Proto::Ah => 51,
            Proto::Esp => 50,
            _ => return None,
        })
    }

    /// Which IP versions a protocol over IP is looked for in (libpcap: ICMP, IGMP, IGRP, VRRP
    /// and CARP only over IPv4, ICMPv6 only over IPv6): `(v4, v6)`.
    pub(crate) fn ip_versions(self) -> (bool, bool) {
        match self {
            Proto::Icmp | Proto::Igmp | Proto::Igrp | Proto::Vrrp | Proto::Carp => (true, false),
            Proto::Icmp6 => (false, true),
            _ => (true, true),
        }
    }
}

/// The 802.2 SAP of the OSI network layer.
pub(crate) const LLCSAP_ISONS: u8 = 0xfe;
/// The 802.2 SAP of IPX.
pub(crate) const LLCSAP_IPX: u8 = 0xe0;

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

/// An 802.2 LLC test (`llc`, `llc i`, `llc s`, `llc u`, `llc rr`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Llc {
    /// Any 802.2 frame.
    Any,
    /// Information frames (control bit 0 clear).
    I,
    /// Supervisory frames, or one kind of them (`rr`, `rnr`, `rej`): control & mask == value.
    S(Option<u8>),
    /// Unnumbered frames, or one kind of them (`ui`, `ua`, `disc`, ...).
    U(Option<u8>),
}

/// A tunnel whose inner headers start at an offset known only at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tunnel {
    /// Geneve (UDP port 6081): the inner packet is Ethernet or a bare network packet.
    Geneve,
    /// VXLAN (UDP port 4789): the inner packet is Ethernet.
    Vxlan,
}

/// A primitive test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Prim {
    /// A link-layer protocol: `ether proto T`, `ip`, `arp`, `iso`, `stp`, `ipx`, ... (libpcap's
    /// `gen_linktype`: an EtherType, or an 802.2 SAP when at most 1500).
    LinkProto(Off, u32),
    /// An IP protocol number: over IPv4, IPv6 or both.
    IpProto {
        off: Off,
        v4: bool,
        v6: bool,
        proto: u8,
    },
    /// `iso proto N` (the NLPID of an OSI PDU), `isis proto N` (an IS-IS PDU type) when `isis`.
    OsiProto { off: Off, isis: bool, proto: u8 },
    /// `[ip|ip6|arp|rarp] [dir] host|net`.
    Host {
        off: Off,
        proto: Option<Proto>,
        dir: Dir,
        net: Net,
    },
    /// `decnet [dir] host AREA.NODE` (the address in DECnet's byte order).
    DecnetHost { off: Off, dir: Dir, addr: u16 },
    /// `ether [dir] host MAC`.
    EtherHost { off: Off, dir: Dir, mac: [u8; 6] },
    /// `ether broadcast`.
    EtherBroadcast(Off),
    /// `ether multicast`.
    EtherMulticast(Off),
    /// `ip broadcast`: the IPv4 destination's host part all zeros or all ones.
    IpBroadcast { off: Off, netmask: u32 },
    /// `ip multicast` (v6 false) and `ip6 multicast` (v6 true).
    IpMulticast { off: Off, v6: bool },
    /// `[tcp|udp|sctp] [dir] port|portrange`: any of `ranges` (inclusive), over TCP, UDP and
    /// SCTP or the listed protocols. Several come from `port 53 or port 80`, merged as
    /// libpcap's optimizer does (all source-port tests before the destination port is loaded,
    /// which decides short packets).
    Port {
        off: Off,
        protos: Vec<u8>,
        dir: Dir,
        ranges: Vec<(u16, u16)>,
    },
    /// `vlan [id]`, at the offsets before this tag.
    Vlan { off: Off, id: Option<u16> },
    /// `mpls [label]`, at the offsets before this label.
    Mpls { off: Off, label: Option<u32> },
    /// `pppoes [session]`, at the offsets before the PPPoE header.
    Pppoes { off: Off, session: Option<u16> },
    /// `geneve [vni]` / `vxlan [vni]`: the tunnel over UDP, then the inner offsets stored in
    /// `regs` (the inner link-type field, the inner link header, the inner network header).
    Tunnel {
        off: Off,
        kind: Tunnel,
        vni: Option<u32>,
        regs: [u32; 3],
    },
    /// `llc ...`.
    Llc(Off, Llc),
    /// `inbound` (false) / `outbound` (true): the kernel's packet type is (not)
    /// `PACKET_OUTGOING`.
    Outbound(bool),
}

/// A filter expression. `and` and `or` chains are lists, so a long chain nests no deeper
/// than a short one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
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
