//! Unit tests of the whole pipeline on hand-built frames. The differential tests against
//! libpcap are in `tests/filter.rs`.

use super::*;

fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn ipv4(proto: u8, frag: u16, src: [u8; 4], dst: [u8; 4], l4: &[u8]) -> Vec<u8> {
    let mut h = vec![0x45, 0, 0, 0, 0, 0];
    h.extend_from_slice(&frag.to_be_bytes());
    h.extend_from_slice(&[64, proto, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let total = (h.len() + l4.len()) as u16;
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h.extend_from_slice(l4);
    eth(0x0800, &h)
}

fn udp(sport: u16, dport: u16) -> Vec<u8> {
    let mut u = sport.to_be_bytes().to_vec();
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&[0, 12, 0, 0, 0x12, 0x34, 0, 0]);
    u
}

fn m(expr: &str, frame: &[u8]) -> bool {
    let f = Filter::new(expr).unwrap_or_else(|e| panic!("{e}"));
    f.matches(frame, frame.len() as u32)
}

#[test]
fn basic_verdicts() {
    let dns = ipv4(17, 0, [10, 0, 0, 1], [10, 0, 0, 2], &udp(1234, 53));
    assert!(m("udp and dst port 53", &dns));
    assert!(m("udp port domain", &dns));
    assert!(!m("tcp", &dns));
    assert!(m("host 10.0.0.2 and not host 10.0.0.3", &dns));
    assert!(m("src net 10.0.0.0/8", &dns));
    assert!(!m("dst net 10.0.0.0/31", &dns));
    assert!(m("udp[8:2] = 0x1234", &dns));
    assert!(m("ip[0] & 0xf = 5", &dns));
    assert!(m("portrange 50-60", &dns));
    assert!(m("greater 40 and less 100", &dns));
    assert!(m("ether src 2:0:0:0:0:1", &dns));
    assert!(m("ether broadcast", &dns));
    assert!(m("", &dns));
    assert!(!m("vlan", &dns));
    // Not the first fragment: no ports.
    let frag = ipv4(17, 0x0010, [10, 0, 0, 1], [10, 0, 0, 2], &udp(1234, 53));
    assert!(!m("port 53", &frag));
    assert!(m("udp", &frag));
}

#[test]
fn long_programs_use_trampolines() {
    let expr = (0..150)
        .map(|i| format!("host 10.0.{}.{}", i / 200, i % 200))
        .collect::<Vec<_>>()
        .join(" or ");
    let f = Filter::new(&expr).unwrap();
    assert!(f.insns().len() > 256);
    cbpf::check(f.insns()).unwrap();
    let hit = ipv4(6, 0, [10, 0, 0, 149], [1, 1, 1, 1], &[0; 20]);
    let miss = ipv4(6, 0, [10, 0, 1, 149], [1, 1, 1, 1], &[0; 20]);
    assert!(f.matches(&hit, hit.len() as u32));
    assert!(!f.matches(&miss, miss.len() as u32));
}

#[test]
fn error_display_has_a_caret() {
    let e = Filter::new("tcp and port foo").unwrap_err();
    assert_eq!(
        e.to_string(),
        "error at column 14: expected a port number after 'port', found 'foo' (not a known \
         service name)\n  tcp and port foo\n               ^"
    );
    let e = Filter::new("ip[0] / 0 = 1").unwrap_err();
    assert_eq!(e.column, 0);
    assert!(e.to_string().contains("division by zero"));
}

#[test]
fn decimal_round_trip() {
    let f = Filter::new("tcp[tcpflags] & (tcp-syn|tcp-ack) = tcp-syn").unwrap();
    let back = Filter::from_decimal(&f.decimal().to_string()).unwrap();
    assert_eq!(back.insns(), f.insns());
}

#[test]
fn clamped_lowers_accept_values() {
    let f = Filter::new("ip").unwrap();
    let c = f.clamped(96);
    assert!(c.iter().any(|i| *i == Insn::ret(96)));
    assert!(c.iter().any(|i| *i == Insn::ret(0)));
}

/// Offsets the kernel would read as negative (network/link-layer relative, ancillary) are
/// out-of-bounds loads like any other: the program rejects there, in every form.
#[test]
fn huge_offsets_reject_in_every_form() {
    use super::cbpf::{SKF_AD_OFF, SKF_AD_VLAN_TAG, SKF_AD_VLAN_TAG_PRESENT, SKF_AD_VLAN_TPID};
    // The socket form's own metadata reads are the only loads allowed up there.
    let ours = [SKF_AD_VLAN_TAG, SKF_AD_VLAN_TAG_PRESENT, SKF_AD_VLAN_TPID].map(|n| SKF_AD_OFF + n);
    for expr in [
        "ether[4294963248] = 1",
        "ether[0x80000000:2] = 0",
        "ether[0x80000000 + ether[0]] = 0",
        "not ether[4294963248] = 1",
        "ip or ether[0xfffff030] = 1",
    ] {
        let f = Filter::new(expr).unwrap();
        for p in [f.insns().to_vec(), f.socket_program().unwrap()] {
            let bad = p.iter().find(|i| {
                super::cbpf::is_packet_load(i.code) && i.k >= 1 << 31 && !ours.contains(&i.k)
            });
            assert!(bad.is_none(), "'{expr}':\n{}", super::cbpf::Listing(&p));
            assert_eq!(super::cbpf::run(&p, &[0u8; 64], 64), 0, "'{expr}'");
        }
    }
}

/// Run by the interpreter, the socket form of an expression never reads at 2 GiB or more (where
/// the kernel would read a negative offset, or a small one after `x + k` wrapped) but for its
/// own VLAN metadata loads, whether the frame's tag is in metadata or not.
#[test]
fn socket_form_never_loads_at_2_gib() {
    use super::cbpf::{
        is_abs_load, run_traced, VlanTag, SKF_AD_OFF, SKF_AD_VLAN_TAG, SKF_AD_VLAN_TAG_PRESENT,
        SKF_AD_VLAN_TPID,
    };
    let ours = [SKF_AD_VLAN_TAG, SKF_AD_VLAN_TAG_PRESENT, SKF_AD_VLAN_TPID].map(|n| SKF_AD_OFF + n);
    let dns = ipv4(17, 0, [10, 0, 0, 1], [10, 0, 0, 2], &udp(1234, 53));
    let tag = VlanTag {
        tpid: 0x8100,
        tci: 7,
    };
    for expr in [
        "ether[4294963248] = 1",
        "ether[0x80000000 + ether[0]] = 0",
        // 0xfffffffa + 14 wraps to 8 in the kernel's 32-bit sum.
        "ip[0xfffffff8 + ether[6]] = 2",
        "ip[ip[0] * 0x1000000] = 0",
        "udp[0x7ffffff0] = 0",
        "udp[0x7ffffff0 + ether[6]] = 0",
        "tcp[ether[6] * 0x7fffffff] = 0",
        "vlan and ip[ether[6] + 0x7fffffe0] = 0",
        "ip or ether[0xfffff030] = 1",
        "udp port 53 and ip[ip[0] & 0xf] = 0",
    ] {
        let f = Filter::new(expr).unwrap();
        let sock = f.socket_program().unwrap();
        for vlan in [None, Some(tag)] {
            let mut bad = None;
            let verdict = run_traced(&sock, &dns, dns.len() as u32, vlan, |code, off| {
                let anc = is_abs_load(code) && ours.iter().any(|&k| u64::from(k) == off);
                if off >= 1 << 31 && !anc {
                    bad.get_or_insert(off);
                }
            });
            assert_eq!(
                bad,
                None,
                "'{expr}' {vlan:?}:\n{}",
                super::cbpf::Listing(&sock)
            );
            if !expr.contains(" or ") && !expr.contains("port 53") {
                assert_eq!(verdict, 0, "'{expr}' {vlan:?}");
            }
        }
    }
}

/// 10,000 and 20,000 `or` terms, and long `and` chains: a clear error (the program cannot fit
/// the kernel's 4096 instructions), never a stack overflow. Alternations of `and` and `or`
/// nest, and are refused past the nesting limit.
#[test]
fn long_filters_compile_or_are_refused_cleanly() {
    for n in [10_000usize, 20_000] {
        let hosts = (0..n)
            .map(|i| format!("host 10.{}.{}.{}", i >> 16, (i >> 8) & 0xff, i & 0xff))
            .collect::<Vec<_>>()
            .join(" or ");
        let e = Filter::new(&hosts).unwrap_err();
        assert!(e.message.contains("instructions"), "{e}");
        let ports = (0..n)
            .map(|i| format!("port {}", i % 65536))
            .collect::<Vec<_>>()
            .join(" or ");
        let e = Filter::new(&ports).unwrap_err();
        assert!(e.message.contains("instructions"), "{e}");
        let nots = vec!["not tcp"; n].join(" and ");
        assert!(Filter::new(&nots).is_err());
    }
    // A long chain that fits compiles (the optimizer folds the repeated tests).
    let f = Filter::new(&vec!["ip"; 3000].join(" or ")).unwrap();
    assert!(f.insns().len() < 10, "{}", f.listing());
    let mut alt = String::from("tcp");
    for i in 0..300 {
        alt.push_str(if i % 2 == 0 { " or udp" } else { " and ip" });
    }
    let e = Filter::new(&alt).unwrap_err();
    assert!(e.message.contains("nested too deeply"), "{e}");
}

/// The caret line of a long expression shows the part around the column.
#[test]
fn error_display_of_a_long_expression_is_a_window() {
    let expr = format!("{} and port foo", vec!["tcp"; 2000].join(" or "));
    let shown = Filter::new(&expr).unwrap_err().to_string();
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), 3, "{shown}");
    assert!(lines[1].len() < 100, "{shown}");
    assert!(lines[1].contains("port foo") && lines[1].starts_with("  ..."));
    assert_eq!(lines[2].find('^'), lines[1].find("foo"));
}

/// `-s 0` means the whole packet, as in tcpdump.
#[test]
fn snaplen_zero_is_the_whole_packet() {
    let f = Filter::with_snaplen("ip", 0).unwrap();
    assert!(f.insns().contains(&Insn::ret(crate::limits::MAX_SNAPLEN)));
    let f = Filter::with_snaplen("", 0).unwrap();
    assert_eq!(f.insns(), [Insn::ret(crate::limits::MAX_SNAPLEN)]);
}

/// `inbound`/`outbound` read the kernel's packet type: on AF_PACKET sockets (the socket
/// form, VLAN rewrite and all) the kernel's; in the interpreter (and XDP) every packet is a
/// received one.
#[test]
fn inbound_and_outbound() {
    use super::cbpf::{run_with_meta, Meta, VlanTag, PACKET_HOST, PACKET_OUTGOING};
    let dns = ipv4(17, 0, [10, 0, 0, 1], [10, 0, 0, 2], &udp(1234, 53));
    let mut tagged = dns[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0, 0, 100]);
    tagged.extend_from_slice(&dns[12..]);
    assert!(m("inbound", &dns));
    assert!(!m("outbound", &dns));
    // Over a file's packets they are libpcap's error.
    let e = Filter::compile("udp and inbound", FilterOptions::new().savefile()).unwrap_err();
    assert!(
        e.message
            .contains("not supported on Ethernet when reading savefiles"),
        "{e}"
    );
    assert_eq!(e.column, 9);
    assert!(m("not outbound and udp", &dns));
    for (expr, out_hits, in_hits) in [
        ("outbound", true, false),
        ("inbound", false, true),
        ("outbound and vlan 100 and udp", true, false),
        ("inbound and vlan 100 and udp port 53", false, true),
    ] {
        let f = Filter::new(expr).unwrap();
        let sock = f.socket_program().unwrap();
        let tag = Some(VlanTag {
            tpid: 0x8100,
            tci: 100,
        });
        let w = dns.len() as u32;
        let out = Meta::default().with_vlan(tag).with_pkttype(PACKET_OUTGOING);
        let host = Meta::default().with_vlan(tag).with_pkttype(PACKET_HOST);
        assert_eq!(run_with_meta(&sock, &dns, w, out) != 0, out_hits, "{expr}");
        assert_eq!(run_with_meta(&sock, &dns, w, host) != 0, in_hits, "{expr}");
        // The tagged frame as the interpreter sees it: received.
        let tw = tagged.len() as u32;
        assert_eq!(f.matches(&tagged, tw), in_hits, "{expr}");
    }
}

/// `ip broadcast` needs the interface's netmask (libpcap's error without one), then matches a
/// destination whose host part is all zeros or all ones.
#[test]
fn ip_broadcast_takes_the_netmask() {
    let e = Filter::new("ip broadcast").unwrap_err();
    assert!(e.message.contains("netmask not known"), "{e}");
    let f = Filter::compile(
        "ip broadcast",
        FilterOptions::new().netmask([255, 255, 255, 0].into()),
    )
    .unwrap();
    for (dst, want) in [
        ([10, 0, 0, 255], true),
        ([10, 0, 0, 0], true),
        ([255, 255, 255, 255], true),
        ([10, 0, 0, 1], false),
        ([10, 0, 1, 255], true),
        ([10, 0, 0, 127], false),
    ] {
        let p = ipv4(17, 0, [10, 0, 0, 1], dst, &udp(1, 2));
        assert_eq!(f.matches(&p, p.len() as u32), want, "{dst:?}");
    }
}

/// VXLAN (not in libpcap 1.10, so checked here by hand): UDP port 4789, the flags byte 0x08,
/// the VNI; what follows applies to the inner Ethernet frame.
#[test]
fn vxlan_looks_inside() {
    let inner = ipv4(17, 0, [192, 168, 0, 1], [192, 168, 0, 2], &udp(5353, 53));
    let mut inner_eth = inner.clone();
    inner_eth[6..12].copy_from_slice(&[0xab, 0xcd, 0xef, 0, 0, 2]);
    let vx = |flags: u8, vni: u32, inner: &[u8]| {
        let mut p = vec![flags, 0, 0, 0];
        p.extend_from_slice(&(vni << 8).to_be_bytes());
        p.extend_from_slice(inner);
        let mut u = 50_000u16.to_be_bytes().to_vec();
        u.extend_from_slice(&4789u16.to_be_bytes());
        u.extend_from_slice(&((p.len() + 8) as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(&p);
        ipv4(17, 0, [10, 0, 0, 1], [10, 0, 0, 2], &u)
    };
    let frame = vx(0x08, 12345, &inner_eth);
    let cases: &[(&str, &[u8], bool)] = &[
        ("vxlan", &frame, true),
        ("vxlan 12345", &frame, true),
        ("vxlan 12346", &frame, false),
        ("vxlan and udp port 53", &frame, true),
        ("vxlan and host 192.168.0.2", &frame, true),
        ("vxlan and host 10.0.0.2", &frame, false),
        ("host 10.0.0.2 and vxlan", &frame, true),
        ("vxlan and ether src ab:cd:ef:0:0:2", &frame, true),
        ("vxlan and ether[12:2] = 0x800", &frame, true),
        ("vxlan and udp[2:2] = 53", &frame, true),
        ("vxlan and vxlan", &frame, false),
        ("vxlan", &vx(0x0c, 12345, &inner_eth), false),
        ("vxlan", &frame[..frame.len() - 30], true),
        ("vxlan and udp port 53", &frame[..frame.len() - 30], false),
        ("vxlan", &inner, false),
    ];
    for &(expr, pkt, want) in cases {
        let f = Filter::new(expr).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.matches(pkt, pkt.len() as u32), want, "'{expr}'");
        // The socket form agrees (no tag: the same frame).
        let sock = f.socket_program().unwrap();
        assert_eq!(
            cbpf::run(&sock, pkt, pkt.len() as u32) != 0,
            want,
            "socket form of '{expr}'"
        );
    }
}

/// Service names resolve as on Debian (`/etc/services`): a TCP-only or UDP-only name means
/// that protocol, and another protocol qualifier is libpcap's error.
#[test]
fn service_names() {
    let dns = ipv4(17, 0, [10, 0, 0, 1], [10, 0, 0, 2], &udp(1234, 53));
    let ssh_udp = ipv4(17, 0, [10, 0, 0, 1], [10, 0, 0, 2], &udp(1234, 22));
    assert!(m("port domain", &dns));
    assert!(m("udp port domain", &dns));
    assert!(!m("port ssh", &ssh_udp), "ssh is TCP only");
    assert!(m("port 22", &ssh_udp));
    let e = Filter::new("udp port ssh").unwrap_err();
    assert!(e.message.contains("port 'ssh' is tcp"), "{e}");
    let e = Filter::new("tcp portrange bootps-bootpc").unwrap_err();
    assert!(e.message.contains("is udp"), "{e}");
    assert!(m("portrange bootps-domain", &dns));
    assert!(m("portrange 53", &dns));
    assert!(m("ip proto \\udp", &dns));
    assert!(Filter::new("ether proto \\nosuch").is_err());
}
