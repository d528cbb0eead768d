//! The frames the filter tests run expressions over: a small packet builder and a corpus of
//! built frames (every protocol the language names, under VLAN tags, MPLS, PPPoE, VXLAN and
//! Geneve), whole, cut by a snapshot length and as runts.
#![allow(dead_code)]

pub(crate) const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
pub(crate) const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
pub(crate) const BCAST: [u8; 6] = [0xff; 6];
pub(crate) const MCAST: [u8; 6] = [0x01, 0x00, 0x5e, 0, 0, 1];

pub(crate) fn eth(
    dst: [u8; 6],
    src: [u8; 6],
    tags: &[(u16, u16)],
    ethertype: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    for &(tpid, tci) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

pub(crate) struct V4 {
    pub(crate) proto: u8,
    pub(crate) src: [u8; 4],
    pub(crate) dst: [u8; 4],
    /// Fragment field: flags (MF = 0x2000) and offset in 8-byte units.
    pub(crate) frag: u16,
    /// Option bytes (a multiple of 4).
    pub(crate) opts: Vec<u8>,
}

pub(crate) fn v4(proto: u8, src: [u8; 4], dst: [u8; 4]) -> V4 {
    V4 {
        proto,
        src,
        dst,
        frag: 0,
        opts: Vec::new(),
    }
}

pub(crate) fn ipv4(h: &V4, l4: &[u8]) -> Vec<u8> {
    let ihl = 5 + h.opts.len() / 4;
    let total = (ihl * 4 + l4.len()) as u16;
    let mut p = vec![0x40 | ihl as u8, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0x12, 0x34]);
    p.extend_from_slice(&h.frag.to_be_bytes());
    p.extend_from_slice(&[64, h.proto, 0, 0]);
    p.extend_from_slice(&h.src);
    p.extend_from_slice(&h.dst);
    p.extend_from_slice(&h.opts);
    p.extend_from_slice(l4);
    p
}

pub(crate) fn ipv6(nh: u8, src: &str, dst: &str, l4: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    p.extend_from_slice(&[nh, 64]);
    p.extend_from_slice(&src.parse::<std::net::Ipv6Addr>().unwrap().octets());
    p.extend_from_slice(&dst.parse::<std::net::Ipv6Addr>().unwrap().octets());
    p.extend_from_slice(l4);
    p
}

/// An IPv6 extension header (8 bytes) in front of `rest`.
pub(crate) fn ext6(nh: u8, rest: &[u8]) -> Vec<u8> {
    let mut p = vec![nh, 0, 0, 0, 0, 0, 0, 0];
    p.extend_from_slice(rest);
    p
}

pub(crate) fn tcp(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut t = sport.to_be_bytes().to_vec();
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(b"hello");
    t
}

pub(crate) fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = sport.to_be_bytes().to_vec();
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

pub(crate) fn icmp(ty: u8, code: u8) -> Vec<u8> {
    vec![ty, code, 0, 0, 0, 1, 0, 1, b'p', b'i', b'n', b'g']
}

pub(crate) fn arp(op: u16, spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&MAC_A);
    a.extend_from_slice(&spa);
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&tpa);
    a
}

/// An 802.3 frame: a length field, then an 802.2 LLC header and `payload`.
pub(crate) fn llc_frame(dst: [u8; 6], dsap: u8, ssap: u8, ctrl: u8, payload: &[u8]) -> Vec<u8> {
    let mut l = vec![dsap, ssap, ctrl];
    l.extend_from_slice(payload);
    let len = l.len() as u16;
    eth(dst, MAC_A, &[], len, &l)
}

/// An 802.3 frame with an 802.2 SNAP header (organization `org`, protocol `ptype`).
pub(crate) fn snap_frame(org: u32, ptype: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = org.to_be_bytes()[1..].to_vec();
    p.extend_from_slice(&ptype.to_be_bytes());
    p.extend_from_slice(payload);
    llc_frame(MAC_B, 0xaa, 0xaa, 0x03, &p)
}

/// An IS-IS PDU of type `pdu` over 802.2 (OSI SAPs).
pub(crate) fn isis_frame(pdu: u8) -> Vec<u8> {
    llc_frame(
        [0x01, 0x80, 0xc2, 0, 0, 0x14],
        0xfe,
        0xfe,
        0x03,
        &[0x83, 27, 1, 0, pdu, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    )
}

/// MPLS label stack entries (label, bottom of stack) in front of `payload`.
pub(crate) fn mpls(labels: &[(u32, bool)], payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    for &(label, bos) in labels {
        let e = (label << 12) | (u32::from(bos) << 8) | 64;
        p.extend_from_slice(&e.to_be_bytes());
    }
    p.extend_from_slice(payload);
    p
}

/// A PPPoE session payload: the PPPoE header, then PPP protocol `proto` and `payload`.
pub(crate) fn pppoe_session(session: u16, proto: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x11, 0x00];
    p.extend_from_slice(&session.to_be_bytes());
    p.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    p.extend_from_slice(&proto.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// A VXLAN header (flags `flags`, VNI `vni`) and the inner frame.
pub(crate) fn vxlan(flags: u8, vni: u32, inner: &[u8]) -> Vec<u8> {
    let mut p = vec![flags, 0, 0, 0];
    p.extend_from_slice(&(vni << 8).to_be_bytes());
    p.extend_from_slice(inner);
    p
}

/// A Geneve header (version `ver`, options `opts`, protocol `proto`, VNI `vni`) and payload.
pub(crate) fn geneve(ver: u8, opts: &[u8], proto: u16, vni: u32, inner: &[u8]) -> Vec<u8> {
    let mut p = vec![(ver << 6) | (opts.len() / 4) as u8, 0];
    p.extend_from_slice(&proto.to_be_bytes());
    p.extend_from_slice(&(vni << 8).to_be_bytes());
    p.extend_from_slice(opts);
    p.extend_from_slice(inner);
    p
}

/// A DECnet routing data header: long or short, with or without one padding byte, from and
/// to node addresses in DECnet's little-endian form.
pub(crate) fn decnet(long: bool, pad: bool, src: u16, dst: u16) -> Vec<u8> {
    let mut p = vec![0, 0];
    if pad {
        p.push(0x81);
    }
    let (s, d) = (src.to_le_bytes(), dst.to_le_bytes());
    if long {
        p.extend_from_slice(&[0x26, 0, 0, 0xaa, 0, 4, 0, d[0], d[1], 0, 0, 0xaa, 0, 4, 0]);
        p.extend_from_slice(&[s[0], s[1], 0, 0, 0, 0]);
    } else {
        p.extend_from_slice(&[0x02, d[0], d[1], s[0], s[1], 0]);
    }
    p.extend_from_slice(&[0x55; 16]);
    let len = (p.len() - 2) as u16;
    p[..2].copy_from_slice(&len.to_le_bytes());
    p
}

/// DECnet node 50.764.
pub(crate) const DN_50_764: u16 = (50 << 10) | 764;
/// MAC addresses the libpcap test expressions use.
pub(crate) const MAC_ABCD1: [u8; 6] = [0xab, 0xcd, 0xef, 0, 0, 1];
pub(crate) const MAC_ABCD2: [u8; 6] = [0xab, 0xcd, 0xef, 0, 0, 2];
pub(crate) const MAC_ABCD3: [u8; 6] = [0xab, 0xcd, 0xef, 0, 0, 3];

pub(crate) const H1: [u8; 4] = [10, 0, 0, 1];
pub(crate) const H2: [u8; 4] = [10, 0, 0, 2];
pub(crate) const H3: [u8; 4] = [192, 168, 1, 1];
pub(crate) const H4: [u8; 4] = [172, 16, 5, 4];

/// A captured frame: bytes and length on the wire.
#[derive(Clone)]
pub(crate) struct Pkt {
    pub(crate) data: Vec<u8>,
    pub(crate) wirelen: u32,
    pub(crate) what: String,
}

pub(crate) fn corpus() -> Vec<Pkt> {
    let mut base: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |what: &str, f: Vec<u8>| base.push((what.to_string(), f));
    let v4f = |h: V4, l4: Vec<u8>| eth(MAC_B, MAC_A, &[], 0x0800, &ipv4(&h, &l4));
    add(
        "v4 udp 53",
        v4f(v4(17, H1, H2), udp(40000, 53, &[0x12, 0x34, 0, 1, 0, 0])),
    );
    add(
        "v4 udp 53 reply",
        v4f(v4(17, H2, H1), udp(53, 40000, &[0x12, 0x34, 0x81, 0x80])),
    );
    add("v4 udp 123", v4f(v4(17, H3, H4), udp(123, 123, &[0; 48])));
    add(
        "v4 udp 5000",
        v4f(v4(17, H1, H3), udp(5000, 5001, &[0xde, 0xad, 0xbe, 0xef])),
    );
    add(
        "v4 udp 1024",
        v4f(v4(17, H4, H1), udp(1024, 2047, &[1; 20])),
    );
    add("v4 tcp syn 80", v4f(v4(6, H1, H3), tcp(50000, 80, 0x02)));
    add("v4 tcp synack 80", v4f(v4(6, H3, H1), tcp(80, 50000, 0x12)));
    add("v4 tcp ack 443", v4f(v4(6, H2, H4), tcp(33000, 443, 0x10)));
    add("v4 tcp fin 22", v4f(v4(6, H4, H2), tcp(22, 6000, 0x11)));
    add("v4 tcp rst 15", v4f(v4(6, H1, H2), tcp(15, 20, 0x04)));
    add("v4 icmp echo", v4f(v4(1, H1, H2), icmp(8, 0)));
    add("v4 icmp reply", v4f(v4(1, H2, H1), icmp(0, 0)));
    add("v4 icmp unreach", v4f(v4(1, H3, H1), icmp(3, 3)));
    add(
        "v4 igmp",
        v4f(v4(2, H1, [224, 0, 0, 1]), vec![0x11, 0, 0, 0, 0, 0, 0, 0]),
    );
    add("v4 sctp", v4f(v4(132, H1, H2), udp(53, 9999, &[0; 8])));
    add("v4 gre", v4f(v4(47, H1, H2), vec![0; 8]));
    let mut h = v4(17, H1, H2);
    h.opts = vec![1, 1, 1, 0];
    add(
        "v4 udp 53 with options",
        v4f(h, udp(1111, 53, &[0x12, 0x34])),
    );
    let mut h = v4(6, H3, H1);
    h.opts = vec![1; 8];
    add("v4 tcp 80 ihl 7", v4f(h, tcp(80, 1234, 0x02)));
    let mut h = v4(17, H1, H2);
    h.frag = 0x2000;
    add("v4 udp 53 first fragment", v4f(h, udp(1234, 53, &[0; 16])));
    let mut h = v4(17, H1, H2);
    h.frag = 0x2000 | 185;
    add("v4 udp middle fragment", v4f(h, udp(1234, 53, &[0; 16])));
    let mut h = v4(6, H1, H3);
    h.frag = 3;
    add("v4 tcp last fragment", v4f(h, tcp(80, 80, 0x02)));
    let mut h = v4(1, H1, H2);
    h.frag = 0x4000;
    add("v4 icmp DF", v4f(h, icmp(8, 0)));

    let v6f = |p: Vec<u8>| eth(MAC_B, MAC_A, &[], 0x86dd, &p);
    add(
        "v6 udp 53",
        v6f(ipv6(
            17,
            "2001:db8::1",
            "2001:db8::2",
            &udp(40000, 53, &[0x12, 0x34]),
        )),
    );
    add(
        "v6 udp 53 reply",
        v6f(ipv6(17, "2001:db8::2", "fe80::1", &udp(53, 40000, &[0]))),
    );
    add(
        "v6 tcp syn 80",
        v6f(ipv6(6, "fe80::1", "2001:db8::1", &tcp(51000, 80, 0x02))),
    );
    add(
        "v6 tcp 443 loop",
        v6f(ipv6(6, "::1", "::1", &tcp(443, 443, 0x18))),
    );
    add(
        "v6 icmp6 echo",
        v6f(ipv6(58, "2001:db8::1", "ff02::1", &icmp(128, 0))),
    );
    add(
        "v6 icmp6 ns",
        v6f(ipv6(58, "fe80::1", "ff02::1:ff00:1", &icmp(135, 0))),
    );
    add(
        "v6 frag udp 53",
        v6f(ipv6(
            44,
            "2001:db8::1",
            "2001:db8::2",
            &ext6(17, &udp(1, 53, &[0; 4])),
        )),
    );
    add(
        "v6 frag tcp",
        v6f(ipv6(
            44,
            "2001:db8::3",
            "2001:db8::2",
            &ext6(6, &tcp(80, 81, 2)),
        )),
    );
    add(
        "v6 hbh udp",
        v6f(ipv6(
            0,
            "2001:db8::1",
            "2001:db8::2",
            &ext6(17, &udp(53, 53, &[0; 4])),
        )),
    );
    add(
        "v6 frag icmp6",
        v6f(ipv6(
            44,
            "2001:db8::1",
            "2001:db8::2",
            &ext6(58, &icmp(128, 0)),
        )),
    );

    add(
        "arp request",
        eth(BCAST, MAC_A, &[], 0x0806, &arp(1, H1, H2)),
    );
    add("arp reply", eth(MAC_A, MAC_B, &[], 0x0806, &arp(2, H2, H1)));
    add("arp other", eth(BCAST, MAC_A, &[], 0x0806, &arp(1, H3, H4)));
    add("rarp", eth(BCAST, MAC_A, &[], 0x8035, &arp(3, H4, H3)));
    add(
        "lldp",
        eth(
            MCAST,
            MAC_A,
            &[],
            0x88cc,
            &[0x02, 0x07, 4, 1, 2, 3, 4, 5, 6, 0, 0],
        ),
    );
    add(
        "802.3 llc",
        eth(MCAST, MAC_B, &[], 0x0026, &[0x42, 0x42, 3, 0, 0, 0, 0]),
    );
    add(
        "v4 broadcast udp",
        eth(
            BCAST,
            MAC_A,
            &[],
            0x0800,
            &ipv4(&v4(17, H1, [255; 4]), &udp(68, 67, &[0; 8])),
        ),
    );
    add(
        "v4 multicast",
        eth(
            MCAST,
            MAC_B,
            &[],
            0x0800,
            &ipv4(&v4(17, H2, [224, 0, 0, 251]), &udp(5353, 5353, &[0; 8])),
        ),
    );

    let vl = |tags: &[(u16, u16)], et: u16, p: Vec<u8>| eth(MAC_B, MAC_A, tags, et, &p);
    add(
        "vlan 100 v4 udp 53",
        vl(
            &[(0x8100, 100)],
            0x0800,
            ipv4(&v4(17, H1, H2), &udp(40000, 53, &[0x12, 0x34])),
        ),
    );
    add(
        "vlan 100 prio v4 tcp 80",
        vl(
            &[(0x8100, 0xe064)],
            0x0800,
            ipv4(&v4(6, H3, H1), &tcp(80, 1000, 0x02)),
        ),
    );
    add(
        "vlan 3 v6 udp 53",
        vl(
            &[(0x8100, 3)],
            0x86dd,
            ipv6(17, "2001:db8::1", "2001:db8::2", &udp(9, 53, &[0])),
        ),
    );
    add("vlan 200 arp", vl(&[(0x8100, 200)], 0x0806, arp(1, H1, H2)));
    add(
        "qinq 10/3 v4 udp 53",
        vl(
            &[(0x88a8, 10), (0x8100, 3)],
            0x0800,
            ipv4(&v4(17, H1, H2), &udp(53, 53, &[0; 4])),
        ),
    );
    add(
        "9100 tag v4 icmp",
        vl(&[(0x9100, 7)], 0x0800, ipv4(&v4(1, H1, H2), &icmp(8, 0))),
    );
    add("vlan 100 v4 frag", {
        let mut h = v4(17, H1, H2);
        h.frag = 10;
        vl(&[(0x8100, 100)], 0x0800, ipv4(&h, &udp(1, 53, &[0; 8])))
    });

    // The link layer beyond IPv4, IPv6 and ARP: 802.2 LLC and SNAP, the legacy families.
    add(
        "stp bpdu",
        llc_frame([1, 0x80, 0xc2, 0, 0, 0], 0x42, 0x42, 0x03, &[0; 35]),
    );
    add(
        "llc i frame",
        llc_frame(MAC_B, 0x42, 0x42, 0x00, &[0x01, 2, 3, 4]),
    );
    add("llc s rr", llc_frame(MAC_B, 0x42, 0x43, 0x01, &[0x01, 2]));
    add("llc s rej", llc_frame(MAC_B, 0x42, 0x43, 0x09, &[0x01, 2]));
    add(
        "llc u xid",
        llc_frame(MAC_B, 0xf0, 0xf0, 0xaf, &[0x81, 1, 0]),
    );
    add("llc u test", llc_frame(MAC_B, 0x06, 0x06, 0xf3, &[0; 8]));
    add("llc u disc", llc_frame(MAC_B, 0x42, 0x43, 0x53, &[0; 4]));
    add("llc u frmr", llc_frame(MAC_B, 0x42, 0x43, 0x87, &[0; 4]));
    add(
        "netbeui",
        llc_frame(MAC_B, 0xf0, 0xf0, 0x03, &[0x2c, 0, 0xff, 0xef, 8, 0]),
    );
    add(
        "ip over 802.2",
        llc_frame(
            MAC_B,
            0x06,
            0x06,
            0x03,
            &ipv4(&v4(17, H1, H2), &udp(1, 53, &[])),
        ),
    );
    add(
        "ipx 802.2",
        llc_frame(BCAST, 0xe0, 0xe0, 0x03, &[0xff, 0xff, 0, 30, 0, 4]),
    );
    add(
        "ipx raw 802.3",
        eth(
            BCAST,
            MAC_A,
            &[],
            30,
            &[0xff, 0xff, 0, 30, 0, 4, 0, 0, 0, 0],
        ),
    );
    add(
        "ipx snap",
        snap_frame(0, 0x8137, &[0xff, 0xff, 0, 30, 0, 4]),
    );
    add(
        "ipx ethernet ii",
        eth(BCAST, MAC_A, &[], 0x8137, &[0xff, 0xff, 0, 30, 0, 4]),
    );
    add(
        "appletalk snap",
        snap_frame(0x08_0007, 0x809b, &[0, 20, 0, 0, 0, 0]),
    );
    add(
        "appletalk ethernet ii",
        eth(BCAST, MAC_A, &[], 0x809b, &[0, 20, 0, 0, 0, 0]),
    );
    add(
        "aarp snap",
        snap_frame(0, 0x80f3, &[0, 1, 0x80, 0x9b, 6, 4]),
    );
    add(
        "aarp ethernet ii",
        eth(BCAST, MAC_A, &[], 0x80f3, &[0, 1, 0x80, 0x9b, 6, 4]),
    );
    add("isis l1 lan iih", isis_frame(15));
    add("isis l2 lan iih", isis_frame(16));
    add("isis ptp iih", isis_frame(17));
    add("isis l1 lsp", isis_frame(18));
    add("isis l2 lsp", isis_frame(20));
    add("isis l1 csnp", isis_frame(24));
    add("isis l2 csnp", isis_frame(25));
    add("isis l1 psnp", isis_frame(26));
    add("isis l2 psnp", isis_frame(27));
    add(
        "clnp",
        llc_frame(MAC_B, 0xfe, 0xfe, 0x03, &[0x81, 30, 1, 20, 0x1c, 0, 30, 0]),
    );
    add(
        "esis",
        llc_frame(MAC_B, 0xfe, 0xfe, 0x03, &[0x82, 15, 1, 0, 2, 0, 30, 0]),
    );
    add(
        "decnet long to 50.764",
        eth(
            MAC_B,
            MAC_A,
            &[],
            0x6003,
            &decnet(true, false, 1025, DN_50_764),
        ),
    );
    add(
        "decnet long padded from 50.764",
        eth(
            MAC_B,
            MAC_A,
            &[],
            0x6003,
            &decnet(true, true, DN_50_764, 1025),
        ),
    );
    add(
        "decnet short from 50.764",
        eth(
            MAC_B,
            MAC_A,
            &[],
            0x6003,
            &decnet(false, false, DN_50_764, 7),
        ),
    );
    add(
        "decnet short padded to 50.764",
        eth(
            MAC_B,
            MAC_A,
            &[],
            0x6003,
            &decnet(false, true, 9, DN_50_764),
        ),
    );
    add(
        "decnet other",
        eth(MAC_B, MAC_A, &[], 0x6003, &decnet(true, false, 1, 2)),
    );
    for (what, t) in [
        ("lat", 0x6004),
        ("mopdl", 0x6001),
        ("moprc", 0x6002),
        ("sca", 0x6007),
        ("loopback", 0x9000),
    ] {
        add(what, eth(MAC_B, MAC_A, &[], t, &[0; 30]));
    }
    add(
        "pppoe discovery",
        eth(
            BCAST,
            MAC_A,
            &[],
            0x8863,
            &[0x11, 0x09, 0, 0, 0, 4, 1, 1, 0, 0],
        ),
    );
    // IP protocols over IPv4 and IPv6, and addresses the libpcap test expressions use.
    add(
        "v4 vrrp",
        v4f(
            v4(112, H1, [224, 0, 0, 18]),
            vec![0x21, 1, 100, 1, 0, 1, 0, 0, 10, 0, 0, 9],
        ),
    );
    add("v4 igrp", v4f(v4(9, H1, H2), vec![0x11; 20]));
    add(
        "v4 pim",
        v4f(v4(103, H1, [224, 0, 0, 13]), vec![0x20, 0, 0, 0]),
    );
    add("v4 esp", v4f(v4(50, H1, H2), vec![0, 0, 1, 0, 0, 0, 0, 1]));
    add("v4 eigrp", v4f(v4(88, H1, H2), vec![2, 5, 0, 0]));
    add(
        "v4 udp to 10.0.0.255",
        v4f(v4(17, H1, [10, 0, 0, 255]), udp(137, 137, &[0; 12])),
    );
    add(
        "v4 udp to 0.0.0.0",
        v4f(v4(17, [0; 4], [0; 4]), udp(68, 67, &[0; 12])),
    );
    add(
        "v4 udp 1.2.3.4 port 7",
        v4f(v4(17, [1, 2, 3, 4], H2), udp(7, 40000, &[0; 4])),
    );
    add(
        "v4 tcp smtp",
        v4f(v4(6, H2, [1, 2, 3, 4]), tcp(40000, 25, 0x02)),
    );
    add(
        "v4 udp bootpc",
        v4f(v4(17, [0; 4], [255; 4]), udp(68, 67, &[1; 20])),
    );
    add(
        "v4 sctp 5672",
        v4f(v4(132, H1, H2), udp(5672, 30000, &[0; 12])),
    );
    add(
        "v6 sctp 5672",
        v6f(ipv6(
            132,
            "2001:db8::1",
            "2001:db8::2",
            &udp(30000, 5672, &[0; 12]),
        )),
    );
    add(
        "v6 pim",
        v6f(ipv6(103, "fe80::1", "ff02::d", &[0x20, 0, 0, 0])),
    );
    add(
        "v6 ah",
        v6f(ipv6(
            51,
            "2001:db8::1",
            "2001:db8::2",
            &[17, 4, 0, 0, 0, 0, 1, 0],
        )),
    );
    add(
        "arp 1.2.3.4",
        eth(
            BCAST,
            MAC_ABCD1,
            &[],
            0x0806,
            &arp(1, [1, 2, 3, 4], [192, 168, 7, 7]),
        ),
    );
    add(
        "rarp 1.2.3.4",
        eth(
            BCAST,
            MAC_A,
            &[],
            0x8035,
            &arp(4, [192, 168, 0, 9], [1, 2, 3, 4]),
        ),
    );
    add(
        "abcd macs",
        eth(
            MAC_ABCD3,
            MAC_ABCD2,
            &[],
            0x0800,
            &ipv4(&v4(6, H1, H2), &tcp(7, 25, 0x10)),
        ),
    );
    add(
        "abcd1 mac",
        eth(
            MAC_ABCD1,
            MAC_A,
            &[],
            0x86dd,
            &ipv6(58, "::1", "ff02::1", &icmp(128, 0)),
        ),
    );
    add(
        "vlan 10 v4",
        vl(
            &[(0x8100, 10)],
            0x0800,
            ipv4(&v4(17, H1, H2), &udp(53, 53, &[0; 8])),
        ),
    );
    add(
        "vlan 4095 qinq",
        vl(
            &[(0x88a8, 4095), (0x8100, 10)],
            0x86dd,
            ipv6(17, "::1", "::2", &udp(5, 6, &[0; 8])),
        ),
    );
    // MPLS.
    let dns4 = ipv4(&v4(17, H1, H2), &udp(40000, 53, &[0x12, 0x34, 0, 1]));
    let dns6 = ipv6(
        17,
        "2001:db8::1",
        "2001:db8::2",
        &udp(40000, 53, &[0x12, 0x34, 0, 1]),
    );
    add(
        "mpls 100 v4 dns",
        eth(MAC_B, MAC_A, &[], 0x8847, &mpls(&[(100, true)], &dns4)),
    );
    add(
        "mpls 100/200 v6 dns",
        eth(
            MAC_B,
            MAC_A,
            &[],
            0x8847,
            &mpls(&[(100, false), (200, true)], &dns6),
        ),
    );
    add(
        "mpls 123 v4 tcp",
        eth(
            MAC_B,
            MAC_A,
            &[],
            0x8847,
            &mpls(
                &[(123, true)],
                &ipv4(&v4(6, H3, [1, 2, 3, 4]), &tcp(80, 25, 2)),
            ),
        ),
    );
    add(
        "mpls 100/123/7 v4",
        eth(
            MAC_B,
            MAC_A,
            &[],
            0x8847,
            &mpls(&[(100, false), (123, false), (7, true)], &dns4),
        ),
    );
    add(
        "vlan 100 mpls 100 v4",
        vl(&[(0x8100, 100)], 0x8847, mpls(&[(100, true)], &dns4)),
    );
    // PPPoE sessions.
    add(
        "pppoes 1234 v4 dns",
        eth(MAC_B, MAC_A, &[], 0x8864, &pppoe_session(1234, 0x21, &dns4)),
    );
    add(
        "pppoes 5 v6 dns",
        eth(MAC_B, MAC_A, &[], 0x8864, &pppoe_session(5, 0x57, &dns6)),
    );
    add(
        "pppoes 1234 mpls 123",
        eth(
            MAC_B,
            MAC_A,
            &[],
            0x8864,
            &pppoe_session(1234, 0x281, &mpls(&[(123, true)], &dns4)),
        ),
    );
    add(
        "pppoes lcp",
        eth(
            MAC_B,
            MAC_A,
            &[],
            0x8864,
            &pppoe_session(1234, 0xc021, &[1, 1, 0, 4]),
        ),
    );
    // VXLAN and Geneve: the outer packet over IPv4 and IPv6, the inner Ethernet frame or bare
    // IP packet.
    let inner = eth(MAC_ABCD3, MAC_ABCD2, &[], 0x0800, &dns4);
    let inner6 = eth(MAC_B, MAC_ABCD1, &[], 0x86dd, &dns6);
    let inner_arp = eth(BCAST, MAC_A, &[], 0x0806, &arp(1, H3, [1, 2, 3, 4]));
    let u4 = |dport: u16, p: Vec<u8>| {
        eth(
            MAC_B,
            MAC_A,
            &[],
            0x0800,
            &ipv4(&v4(17, H3, H4), &udp(51000, dport, &p)),
        )
    };
    let u6 = |dport: u16, p: Vec<u8>| {
        eth(
            MAC_B,
            MAC_A,
            &[],
            0x86dd,
            &ipv6(17, "fd00::1", "fd00::2", &udp(51000, dport, &p)),
        )
    };
    add("vxlan 12345 v4 dns", u4(4789, vxlan(0x08, 12345, &inner)));
    add("vxlan 7 v6 dns6", u6(4789, vxlan(0x08, 7, &inner6)));
    add(
        "vxlan 12345 v4 arp",
        u4(4789, vxlan(0x08, 12345, &inner_arp)),
    );
    add("vxlan bad flags", u4(4789, vxlan(0x0c, 12345, &inner)));
    add(
        "vxlan in vxlan",
        u4(
            4789,
            vxlan(
                0x08,
                1,
                &eth(
                    MAC_B,
                    MAC_A,
                    &[],
                    0x0800,
                    &ipv4(&v4(17, H1, H2), &udp(1, 4789, &vxlan(0x08, 12345, &inner))),
                ),
            ),
        ),
    );
    add(
        "geneve 12345 ethernet",
        u4(6081, geneve(0, &[], 0x6558, 12345, &inner)),
    );
    add(
        "geneve 12345 options ethernet",
        u4(
            6081,
            geneve(0, &[0, 0x80, 1, 1, 1, 2, 3, 4], 0x6558, 12345, &inner6),
        ),
    );
    add(
        "geneve 7 bare v4",
        u6(6081, geneve(0, &[], 0x0800, 7, &dns4)),
    );
    add(
        "geneve 12345 bare v6",
        u4(6081, geneve(0, &[], 0x86dd, 12345, &dns6)),
    );
    add(
        "geneve version 1",
        u4(6081, geneve(1, &[], 0x6558, 12345, &inner)),
    );
    add(
        "geneve in geneve",
        u4(
            6081,
            geneve(
                0,
                &[],
                0x0800,
                5,
                &ipv4(
                    &v4(17, H1, H2),
                    &udp(1, 6081, &geneve(0, &[], 0x6558, 12345, &inner_arp)),
                ),
            ),
        ),
    );
    add(
        "geneve 12345 arp",
        u4(6081, geneve(0, &[], 0x6558, 12345, &inner_arp)),
    );
    add(
        "mpls 100 v6 geneve",
        eth(
            MAC_B,
            MAC_A,
            &[],
            0x8847,
            &mpls(
                &[(100, true)],
                &ipv6(
                    17,
                    "::1",
                    "::2",
                    &udp(5, 6081, &geneve(0, &[], 0x6558, 12345, &inner)),
                ),
            ),
        ),
    );
    add(
        "vlan 100 geneve",
        vl(
            &[(0x8100, 100)],
            0x0800,
            ipv4(
                &v4(17, H1, H2),
                &udp(5, 6081, &geneve(0, &[], 0x6558, 12345, &inner)),
            ),
        ),
    );
    add(
        "mpls 100 v6 dns",
        eth(MAC_B, MAC_A, &[], 0x8847, &mpls(&[(100, true)], &dns6)),
    );
    add(
        "pppoes 1234 arp",
        eth(
            MAC_B,
            MAC_A,
            &[],
            0x8864,
            &pppoe_session(1234, 0x0806, &arp(1, [1, 2, 3, 4], H2)),
        ),
    );
    add("udp 4789 not vxlan", u4(4789, vec![0; 6]));
    add("udp 6081 short", u4(6081, vec![0, 0, 0x65]));

    let mut out: Vec<Pkt> = Vec::new();
    for (what, f) in &base {
        let wirelen = f.len() as u32;
        out.push(Pkt {
            data: f.clone(),
            wirelen,
            what: what.clone(),
        });
    }
    // Truncated copies: cut by the snapshot length (the wire length stays), and runt frames
    // (shorter on the wire too).
    for (what, f) in base.iter().step_by(2) {
        for cut in [
            0usize, 6, 13, 14, 16, 17, 20, 22, 27, 34, 36, 38, 41, 45, 50, 55, 58, 62, 66, 70, 80,
            90, 100,
        ] {
            if cut < f.len() {
                out.push(Pkt {
                    data: f[..cut].to_vec(),
                    wirelen: f.len() as u32,
                    what: format!("{what} cut at {cut}"),
                });
            }
        }
    }
    for (what, f) in base.iter().skip(1).step_by(3) {
        for cut in [12usize, 20, 30, 37, 50] {
            if cut < f.len() {
                out.push(Pkt {
                    data: f[..cut].to_vec(),
                    wirelen: cut as u32,
                    what: format!("{what} runt of {cut}"),
                });
            }
        }
    }
    out
}
