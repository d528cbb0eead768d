//! The network and transport layers: IP protocols, IPv4, IPv6, ARP and DECnet hosts and
//! networks, IP broadcast and multicast, OSI protocols, ports.

use super::link::link_proto;
use super::{and, dir, eq_at, load, masked_eq, not, or, test, Cond};
use crate::filter::cbpf::*;
use crate::filter::parse::{words, Dir, Net, Off, Proto};

/// `ip proto p` / `ip6 proto p` with IPv6's one-fragment-header chase
/// (`ip6[6] == 44 and ip6[40] == p`), as libpcap does.
pub(super) fn ip_proto(off: &Off, v4: bool, v6: bool, p: u8) -> Cond {
    let p = u32::from(p);
    let c4 = || and(link_proto(off, 0x0800), eq_at(off.net, 9, BPF_B, p));
    let c6 = || {
        and(
            link_proto(off, 0x86dd),
            or(
                eq_at(off.net, 6, BPF_B, p),
                and(eq_at(off.net, 6, BPF_B, 44), eq_at(off.net, 40, BPF_B, p)),
            ),
        )
    };
    match (v4, v6) {
        (true, true) => or(c4(), c6()),
        (true, false) => c4(),
        (false, true) => c6(),
        (false, false) => Cond::Const(false),
    }
}

/// `iso proto p` (an NLPID after the 3-byte LLC header), or `isis proto p` (an IS-IS PDU
/// type, 4 bytes into the IS-IS header).
pub(super) fn osi_proto(off: &Off, isis: bool, p: u8) -> Cond {
    let iso = |nlpid: u32| and(link_proto(off, 0xfe), eq_at(off.nosnap, 0, BPF_B, nlpid));
    if isis {
        and(iso(0x83), eq_at(off.nosnap, 4, BPF_B, u32::from(p)))
    } else {
        iso(u32::from(p))
    }
}

fn v4_word(at: super::Pos, rel: u32, addr: u32, mask: u32) -> Cond {
    if mask == 0 {
        // Always true; libpcap's optimizer drops the load too, which matters for short packets.
        return Cond::Const(true);
    }
    masked_eq(at, rel, BPF_W, mask, addr & mask)
}

fn v6_addr(at: super::Pos, rel: u32, addr: u128, mask: u128) -> Cond {
    let (a, m) = (words(addr), words(mask));
    let mut c = Cond::Const(true);
    for i in 0..4 {
        if m[i] != 0 {
            c = and(c, v4_word(at, rel + 4 * i as u32, a[i], m[i]));
        }
    }
    c
}

/// `[ip|ip6|arp|rarp] [dir] host|net`: IPv4 addresses in IPv4, ARP and RARP (unless the
/// protocol says which), IPv6 addresses in IPv6.
pub(super) fn host(off: &Off, proto: Option<Proto>, d: Dir, net: Net) -> Cond {
    match net {
        Net::V4 { addr, mask } => {
            let hostop = |ll: u32, src: u32, dst: u32| {
                and(
                    link_proto(off, ll),
                    dir(
                        d,
                        v4_word(off.net, src, addr, mask),
                        v4_word(off.net, dst, addr, mask),
                    ),
                )
            };
            match proto {
                Some(Proto::Ip) => hostop(0x0800, 12, 16),
                Some(Proto::Arp) => hostop(0x0806, 14, 24),
                Some(Proto::Rarp) => hostop(0x8035, 14, 24),
                _ => or(
                    or(hostop(0x0800, 12, 16), hostop(0x0806, 14, 24)),
                    hostop(0x8035, 14, 24),
                ),
            }
        }
        Net::V6 { addr, mask } => and(
            link_proto(off, 0x86dd),
            dir(
                d,
                v6_addr(off.net, 8, addr, mask),
                v6_addr(off.net, 24, addr, mask),
            ),
        ),
    }
}

/// `decnet [dir] host AREA.NODE` (`addr` in DECnet's byte order): the address in a long or
/// short data header, after 0 or 1 padding byte (libpcap's `gen_dnhostop`, whose masks are
/// byte-swapped as on a little-endian host).
pub(super) fn decnet_host(off: &Off, d: Dir, addr: u16) -> Cond {
    let addr = u32::from(addr);
    // (short header offset, long header offset) of the address after the flags.
    let one = |(sh, lh): (u32, u32)| {
        let b = off.net;
        and(
            link_proto(off, 0x6003),
            or(
                or(
                    or(
                        and(
                            masked_eq(b, 2, BPF_B, 0x07, 0x02),
                            eq_at(b, 2 + sh, BPF_H, addr),
                        ),
                        and(
                            masked_eq(b, 2, BPF_H, 0xff07, 0x8102),
                            eq_at(b, 3 + sh, BPF_H, addr),
                        ),
                    ),
                    and(
                        masked_eq(b, 2, BPF_B, 0x07, 0x06),
                        eq_at(b, 2 + lh, BPF_H, addr),
                    ),
                ),
                and(
                    masked_eq(b, 2, BPF_H, 0xff07, 0x8106),
                    eq_at(b, 3 + lh, BPF_H, addr),
                ),
            ),
        )
    };
    let (src, dst) = ((3, 15), (1, 7));
    match d {
        Dir::Src => one(src),
        Dir::Dst => one(dst),
        Dir::Either => or(one(src), one(dst)),
        Dir::Both => and(one(src), one(dst)),
    }
}

/// `ip broadcast`: the destination's host part (under `netmask`) all zeros or all ones.
pub(super) fn ip_broadcast(off: &Off, netmask: u32) -> Cond {
    let host = !netmask;
    and(
        link_proto(off, 0x0800),
        or(
            v4_word(off.net, 16, 0, host),
            v4_word(off.net, 16, host, host),
        ),
    )
}

/// `ip multicast` (destination in 224.0.0.0/4 and up) and `ip6 multicast` (ff00::/8).
pub(super) fn ip_multicast(off: &Off, v6: bool) -> Cond {
    if v6 {
        and(link_proto(off, 0x86dd), eq_at(off.net, 24, BPF_B, 0xff))
    } else {
        and(
            link_proto(off, 0x0800),
            test(load(off.net, 16, BPF_B), BPF_JGE, 224),
        )
    }
}

/// X = the IPv4 header's length, plus the variable part of the network offset if it has one.
pub(super) fn ip_header_len(off: &Off) -> Vec<Insn> {
    match off.net.reg {
        None => vec![Insn::stmt(BPF_LDX | BPF_B | BPF_MSH, off.net.k)],
        Some(r) => vec![
            Insn::stmt(BPF_LDX | BPF_MEM, r),
            Insn::stmt(BPF_LD | BPF_B | BPF_IND, off.net.k),
            Insn::stmt(BPF_ALU | BPF_AND | BPF_K, 0xf),
            Insn::stmt(BPF_ALU | BPF_LSH | BPF_K, 2),
            Insn::stmt(BPF_ALU | BPF_ADD | BPF_X, 0),
            Insn::stmt(BPF_MISC | BPF_TAX, 0),
        ],
    }
}

/// Loads `size` bytes at `rel` past the IPv4 header (through its variable length).
pub(super) fn transport_load(off: &Off, rel: u32, size: u16) -> Vec<Insn> {
    let mut v = ip_header_len(off);
    v.push(Insn::stmt(
        BPF_LD | size | BPF_IND,
        off.net.k.wrapping_add(rel),
    ));
    v
}

/// Not a later IPv4 fragment (fragment offset 0).
pub(super) fn first_fragment(off: &Off) -> Cond {
    not(test(load(off.net, 6, BPF_H), BPF_JSET, 0x1fff))
}

fn port_test(pre: Vec<Insn>, ranges: &[(u16, u16)]) -> Cond {
    ranges.iter().fold(Cond::Const(false), |c, &(lo, hi)| {
        let t = if lo == hi {
            test(pre.clone(), BPF_JEQ, u32::from(lo))
        } else {
            and(
                test(pre.clone(), BPF_JGE, u32::from(lo)),
                not(test(pre.clone(), BPF_JGT, u32::from(hi))),
            )
        };
        or(c, t)
    })
}

/// The IP protocol (one of `protos`) and the network header of the IPv4 (`v6` false) or
/// IPv6 packet; for IPv4 the first fragment only.
fn transport(off: &Off, protos: &[u8], v6: bool) -> Cond {
    let at = if v6 { 6 } else { 9 };
    let proto = protos.iter().fold(Cond::Const(false), |c, &p| {
        or(c, eq_at(off.net, at, BPF_B, u32::from(p)))
    });
    if v6 {
        and(link_proto(off, 0x86dd), proto)
    } else {
        and(and(link_proto(off, 0x0800), proto), first_fragment(off))
    }
}

/// `[tcp|udp|sctp] [dir] port|portrange`: over IPv6, then over the first IPv4 fragment.
pub(super) fn port(off: &Off, protos: &[u8], d: Dir, ranges: &[(u16, u16)]) -> Cond {
    let v6 = and(
        transport(off, protos, true),
        dir(
            d,
            port_test(load(off.net, 40, BPF_H), ranges),
            port_test(load(off.net, 42, BPF_H), ranges),
        ),
    );
    let v4 = and(
        transport(off, protos, false),
        dir(
            d,
            port_test(transport_load(off, 0, BPF_H), ranges),
            port_test(transport_load(off, 2, BPF_H), ranges),
        ),
    );
    or(v6, v4)
}

/// Destination port `port` over IPv6 (`v6`) or the first IPv4 fragment.
pub(super) fn dst_port(off: &Off, protos: &[u8], v6: bool, port: u16) -> Cond {
    let pre = if v6 {
        load(off.net, 42, BPF_H)
    } else {
        transport_load(off, 2, BPF_H)
    };
    and(
        transport(off, protos, v6),
        test(pre, BPF_JEQ, u32::from(port)),
    )
}
