//! The link layer and the encapsulations: link-layer protocol tests (EtherTypes, 802.2 SAPs
//! and SNAP, PPP protocol numbers, the IP version inside MPLS), 802.2 LLC frame types,
//! Ethernet addresses, VLAN tags, MPLS labels, PPPoE sessions, Geneve and VXLAN tunnels, and
//! the packet's direction.

use super::{and, eq_at, load, masked_eq, not, or, test, Cond};
use crate::filter::cbpf::*;
use crate::filter::parse::{Dir, LinkKind, Llc, Off, Tunnel, LLCSAP_IPX, LLCSAP_ISONS};

/// The largest 802.3 length: a type field up to this is a length, an 802.2 header follows.
const ETHERMTU: u32 = 1500;

/// Whether `i` is the packet-type load `inbound`/`outbound` compile to.
pub(crate) fn is_pkttype_load(i: Insn) -> bool {
    is_abs_load(i.code) && i.k == SKF_AD_OFF + SKF_AD_PKTTYPE
}

/// The type field at `off` is an 802.3 length (at most 1500).
fn is_8023(off: &Off) -> Cond {
    not(test(load(off.linktype, 0, BPF_H), BPF_JGT, ETHERMTU))
}

/// An 802.2 SNAP header with organization code `org` and protocol `ptype` at the start of the
/// link payload (compared last word first, as libpcap does).
fn snap(off: &Off, org: u32, ptype: u32) -> Cond {
    let first = 0xaaaa_0300 | (org >> 16);
    let second = ((org & 0xffff) << 16) | ptype;
    and(
        eq_at(off.llc, 4, BPF_W, second),
        eq_at(off.llc, 0, BPF_W, first),
    )
}

/// The PPP protocol number libpcap tests for link-layer protocol `ll` inside PPP.
fn ppp_type(ll: u32) -> u32 {
    match ll {
        0x0800 => 0x21,
        0x86dd => 0x57,
        0x6003 => 0x27,
        0x809b => 0x29,
        0x0600 => 0x25,
        0xfe => 0x23,
        0x42 => 0x31,
        0xe0 => 0x2b,
        other => other,
    }
}

/// Link-layer protocol `ll` at `off` (libpcap's `gen_linktype`): an EtherType, or an 802.2
/// SAP when at most 1500; inside PPP its PPP number; inside MPLS, IPv4 or IPv6 by the
/// bottom-of-stack bit of the last label and the IP version (the parser allows nothing else).
pub(super) fn link_proto(off: &Off, ll: u32) -> Cond {
    match off.kind {
        LinkKind::Mpls => {
            let version = if ll == 0x86dd { 0x60 } else { 0x40 };
            and(
                masked_eq(off.net.minus(2), 0, BPF_B, 0x01, 0x01),
                masked_eq(off.net, 0, BPF_B, 0xf0, version),
            )
        }
        LinkKind::Ppp => eq_at(off.linktype, 0, BPF_H, ppp_type(ll)),
        LinkKind::Ether => ether_linktype(off, ll),
    }
}

/// libpcap's `gen_ether_linktype`.
fn ether_linktype(off: &Off, ll: u32) -> Cond {
    const IP_SAP: u32 = 0x06;
    const NETBEUI_SAP: u32 = 0xf0;
    match ll {
        // OSI, IP over 802.2 and NetBEUI: both SAPs.
        l if l == u32::from(LLCSAP_ISONS) || l == IP_SAP || l == NETBEUI_SAP => {
            and(is_8023(off), eq_at(off.llc, 0, BPF_H, (l << 8) | l))
        }
        // IPX: Ethernet II, or 802.3 with SNAP, the IPX SAP, or raw (0xffff).
        l if l == u32::from(LLCSAP_IPX) => or(
            eq_at(off.linktype, 0, BPF_H, 0x8137),
            and(
                is_8023(off),
                or(
                    snap(off, 0, 0x8137),
                    or(
                        eq_at(off.llc, 0, BPF_B, l),
                        eq_at(off.llc, 0, BPF_H, 0xffff),
                    ),
                ),
            ),
        ),
        // AppleTalk and AARP: Ethernet II, or 802.3 with SNAP.
        0x809b | 0x80f3 => {
            let org = if ll == 0x809b { 0x08_0007 } else { 0 };
            or(
                eq_at(off.linktype, 0, BPF_H, ll),
                and(is_8023(off), snap(off, org, ll)),
            )
        }
        l if l <= ETHERMTU => and(is_8023(off), eq_at(off.linktype, 2, BPF_B, l)),
        l => eq_at(off.linktype, 0, BPF_H, l),
    }
}

/// Inside Geneve, whether the inner packet has an Ethernet header (its start and the start of
/// its payload differ).
fn has_l2(off: &Off) -> Cond {
    match off.l2_check {
        Some((hdr, payload)) => not(Cond::Test {
            pre: vec![
                Insn::stmt(BPF_LD | BPF_MEM, hdr),
                Insn::stmt(BPF_LDX | BPF_MEM, payload),
            ],
            code: BPF_JMP | BPF_JEQ | BPF_X,
            k: 0,
        }),
        None => Cond::Const(true),
    }
}

/// `ether [dir] host MAC` (and `ether broadcast`: the destination all ones).
pub(super) fn ether_host(off: &Off, d: Dir, mac: [u8; 6]) -> Cond {
    let lo = u32::from_be_bytes([mac[2], mac[3], mac[4], mac[5]]);
    let hi = u32::from(u16::from_be_bytes([mac[0], mac[1]]));
    let at = |base: u32| {
        and(
            eq_at(off.linkhdr, base + 2, BPF_W, lo),
            eq_at(off.linkhdr, base, BPF_H, hi),
        )
    };
    and(has_l2(off), super::dir(d, at(6), at(0)))
}

/// `ether multicast`: the group bit of the destination address.
pub(super) fn ether_multicast(off: &Off) -> Cond {
    and(has_l2(off), test(load(off.linkhdr, 0, BPF_B), BPF_JSET, 1))
}

/// `vlan [id]`: an 802.1Q, 802.1ad or old QinQ TPID at the link-type offset, and the id.
pub(super) fn vlan(off: &Off, id: Option<u16>) -> Cond {
    let tagged = or(
        or(
            eq_at(off.linktype, 0, BPF_H, 0x8100),
            eq_at(off.linktype, 0, BPF_H, 0x88a8),
        ),
        eq_at(off.linktype, 0, BPF_H, 0x9100),
    );
    match id {
        None => tagged,
        Some(id) => and(
            tagged,
            masked_eq(off.linktype, 2, BPF_H, 0xfff, u32::from(id)),
        ),
    }
}

/// `mpls [label]` at `off` (before this label): the MPLS EtherType (or PPP protocol) for the
/// first label, the previous label not the bottom of the stack for the next ones.
pub(super) fn mpls(off: &Off, label: Option<u32>) -> Cond {
    let first = if off.labels > 0 {
        masked_eq(off.net.minus(2), 0, BPF_B, 0x01, 0)
    } else if off.kind == LinkKind::Ppp {
        eq_at(off.linktype, 0, BPF_H, 0x0281)
    } else {
        link_proto(off, 0x8847)
    };
    match label {
        None => first,
        Some(l) => and(first, masked_eq(off.net, 0, BPF_W, 0xffff_f000, l << 12)),
    }
}

/// `pppoes [session]` at `off` (before the PPPoE header).
pub(super) fn pppoes(off: &Off, session: Option<u16>) -> Cond {
    let b = link_proto(off, 0x8864);
    match session {
        None => b,
        Some(s) => and(b, masked_eq(off.net, 0, BPF_W, 0xffff, u32::from(s))),
    }
}

/// `llc ...` at `off`.
pub(super) fn llc(off: &Off, kind: Llc) -> Cond {
    let any = and(is_8023(off), not(eq_at(off.llc, 0, BPF_H, 0xffff)));
    let control = |mask: u32, v: u32| masked_eq(off.llc, 2, BPF_B, mask, v);
    match kind {
        Llc::Any => any,
        Llc::I => and(any, not(test(load(off.llc, 2, BPF_B), BPF_JSET, 1))),
        Llc::S(None) => and(any, control(0x03, 0x01)),
        Llc::U(None) => and(any, control(0x03, 0x03)),
        Llc::S(Some(v)) => and(any, control(0x0f, u32::from(v))),
        Llc::U(Some(v)) => and(any, control(0xef, u32::from(v))),
    }
}

/// `inbound` / `outbound`: the kernel's packet type (Linux's ancillary load, as libpcap).
pub(super) fn outbound(out: bool) -> Cond {
    let t = test(
        vec![Insn::stmt(
            BPF_LD | BPF_H | BPF_ABS,
            SKF_AD_OFF + SKF_AD_PKTTYPE,
        )],
        BPF_JEQ,
        u32::from(PACKET_OUTGOING),
    );
    if out {
        t
    } else {
        not(t)
    }
}

/// The UDP tunnel at `off` over IPv4 (first fragment) or IPv6 to destination port `port`, its
/// first byte tested by `first` (mask, value) and its VNI, then X set to the length of the IP
/// header plus the variable part of the network offset. libpcap's `gen_geneve4`/`6` and
/// `gen_vxlan4`/`6`.
fn tunnel_check(off: &Off, port: u16, first: (u32, u32), vni: Option<u32>) -> Cond {
    let udp = [17u8];
    let over = |v6: bool| {
        let field = |rel: u32, size: u16| -> Vec<Insn> {
            if v6 {
                load(off.net, 40 + rel, size)
            } else {
                super::net::transport_load(off, rel, size)
            }
        };
        let mut c = super::net::dst_port(off, &udp, v6, port);
        let mut pre = field(8, BPF_B);
        if first.0 != u32::MAX {
            pre.push(Insn::stmt(BPF_ALU | BPF_AND | BPF_K, first.0));
        }
        c = and(c, test(pre, BPF_JEQ, first.1));
        if let Some(v) = vni {
            let mut pre = field(12, BPF_W);
            pre.push(Insn::stmt(BPF_ALU | BPF_AND | BPF_K, 0xffff_ff00));
            c = and(c, test(pre, BPF_JEQ, v << 8));
        }
        // X = the IP header's length plus the variable part of the network offset; the
        // jump (`A == X`, always taken) only carries it on.
        let mut pre = Vec::new();
        if v6 {
            if let Some(r) = off.net.reg {
                pre.push(Insn::stmt(BPF_LDX | BPF_MEM, r));
                pre.push(Insn::stmt(BPF_LD | BPF_IMM, 40));
                pre.push(Insn::stmt(BPF_ALU | BPF_ADD | BPF_X, 0));
            } else {
                pre.push(Insn::stmt(BPF_LD | BPF_IMM, 40));
            }
            pre.push(Insn::stmt(BPF_MISC | BPF_TAX, 0));
        } else {
            pre.extend(super::net::ip_header_len(off));
            pre.push(Insn::stmt(BPF_MISC | BPF_TXA, 0));
        }
        and(
            c,
            Cond::Test {
                pre,
                code: BPF_JMP | BPF_JEQ | BPF_X,
                k: 0,
            },
        )
    };
    or(over(false), over(true))
}

/// An always-true test that runs `pre` (it stores offsets; its loads may still fail).
fn run(mut pre: Vec<Insn>) -> Cond {
    pre.push(Insn::stmt(BPF_LD | BPF_IMM, 0));
    test(pre, BPF_JEQ, 0)
}

/// `geneve [vni]` / `vxlan [vni]` at `off`, storing the inner offsets in `regs`: the inner
/// link-type field, the inner link header, the inner payload (network header).
pub(super) fn tunnel(off: &Off, kind: Tunnel, vni: Option<u32>, regs: [u32; 3]) -> Cond {
    let [r_type, r_hdr, r_payload] = regs;
    // A = X = IP header length (+ variable offset part) here; the UDP payload starts 8 bytes
    // after the IP header.
    let start = off.net.k.wrapping_add(8);
    let st = |r| Insn::stmt(BPF_ST, r);
    let alu = |op: u16, k: u32| Insn::stmt(BPF_ALU | op | BPF_K, k);
    match kind {
        Tunnel::Geneve => {
            let check = tunnel_check(off, 6081, (0xc0, 0), vni);
            // X = Geneve header; its protocol type 2 bytes in is the inner link type unless
            // the payload is Ethernet (0x6558), whose own type field then is.
            let offsets = vec![
                alu(BPF_ADD, start),
                Insn::stmt(BPF_MISC | BPF_TAX, 0),
                alu(BPF_ADD, 2),
                st(r_type),
                Insn::stmt(BPF_LD | BPF_B | BPF_IND, 0),
                alu(BPF_AND, 0x3f),
                alu(BPF_MUL, 4),
                alu(BPF_ADD, 8),
                Insn::stmt(BPF_ALU | BPF_ADD | BPF_X, 0),
                st(r_hdr),
                Insn::stmt(BPF_LD | BPF_H | BPF_IND, 2),
                Insn::stmt(BPF_LDX | BPF_MEM, r_hdr),
            ];
            let ethernet = and(
                test(offsets, BPF_JEQ, 0x6558),
                run(vec![
                    Insn::stmt(BPF_MISC | BPF_TXA, 0),
                    alu(BPF_ADD, 12),
                    st(r_type),
                    alu(BPF_ADD, 2),
                    Insn::stmt(BPF_MISC | BPF_TAX, 0),
                    Insn::stmt(BPF_STX, r_payload),
                ]),
            );
            let bare = run(vec![Insn::stmt(BPF_STX, r_payload)]);
            and(check, or(ethernet, bare))
        }
        Tunnel::Vxlan => {
            // The flags byte is exactly 0x08 (a VNI present); the payload is Ethernet.
            let check = tunnel_check(off, 4789, (u32::MAX, 0x08), vni);
            let offsets = vec![
                alu(BPF_ADD, start),
                alu(BPF_ADD, 8),
                st(r_hdr),
                alu(BPF_ADD, 12),
                st(r_type),
                alu(BPF_ADD, 2),
                Insn::stmt(BPF_MISC | BPF_TAX, 0),
                Insn::stmt(BPF_STX, r_payload),
            ];
            and(check, run(offsets))
        }
    }
}
